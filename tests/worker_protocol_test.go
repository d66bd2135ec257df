package tests

// The PHP worker's wire protocol, checked with goridge's own frame code (the code RoadRunner
// uses), without RoadRunner.

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roadrunner-server/goridge/v3/pkg/frame"
	"github.com/roadrunner-server/goridge/v3/pkg/pipe"
)

type phpWorker struct {
	cmd   *exec.Cmd
	relay *pipe.Relay
	out   string
}

func startWorker(t *testing.T) *phpWorker {
	t.Helper()
	requirePHP(t)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	cmd := exec.Command("php", workerPath(t))
	cmd.Env = append(os.Environ(), "RR_TEST_OUT="+out, "RR_RELAY=pipes")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	w := &phpWorker{cmd: cmd, relay: pipe.NewPipeRelay(stdout, stdin), out: out}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return w
}

func (w *phpWorker) send(t *testing.T, flags []byte, options []uint32, payload []byte) {
	t.Helper()
	fr := frame.NewFrame()
	fr.WriteVersion(fr.Header(), frame.Version1)
	fr.WriteFlags(fr.Header(), flags...)
	if len(options) > 0 {
		fr.WriteOptions(fr.HeaderPtr(), options...)
	}
	fr.WritePayloadLen(fr.Header(), uint32(len(payload)))
	fr.WritePayload(payload)
	fr.WriteCRC(fr.Header())
	must(t, w.relay.Send(fr))
}

// receive reads one frame (goridge verifies its CRC).
func (w *phpWorker) receive(t *testing.T) *frame.Frame {
	t.Helper()
	fr := frame.NewFrame()
	done := make(chan error, 1)
	go func() { done <- w.relay.Receive(fr) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame from the worker within 10s")
	}
	return fr
}

// job sends a job and returns the reply frame.
func (w *phpWorker) job(t *testing.T, id string, headers map[string][]string, body string) *frame.Frame {
	t.Helper()
	ctx, _ := json.Marshal(map[string]any{"id": id, "job": "test.job", "driver": "sql", "queue": "q", "pipeline": "p", "headers": headers})
	w.send(t, []byte{frame.CodecProto}, []uint32{uint32(len(ctx))}, append(ctx, body...))
	return w.receive(t)
}

type replyBody struct {
	Type int `json:"type"`
	Data struct {
		Message      string              `json:"message"`
		Requeue      bool                `json:"requeue"`
		DelaySeconds int                 `json:"delay_seconds"`
		Headers      map[string][]string `json:"headers"`
	} `json:"data"`
}

func reply(t *testing.T, fr *frame.Frame) replyBody {
	t.Helper()
	opts := fr.ReadOptions(fr.Header())
	if len(opts) != 1 || opts[0] != 0 {
		t.Fatalf("reply options %v, want [0]", opts)
	}
	if fr.ReadFlags()&frame.ERROR != 0 {
		t.Fatalf("unexpected error frame: %s", fr.Payload())
	}
	var r replyBody
	if err := json.Unmarshal(fr.Payload(), &r); err != nil {
		t.Fatalf("reply %q: %v", fr.Payload(), err)
	}
	return r
}

func TestWorkerProtocol(t *testing.T) {
	w := startWorker(t)

	w.send(t, []byte{frame.CONTROL, frame.CodecJSON}, nil, []byte(`{"pid":1}`))
	hs := w.receive(t)
	if hs.ReadFlags()&frame.CONTROL == 0 {
		t.Fatalf("handshake reply is not a control frame: flags %x", hs.ReadFlags())
	}
	var pid struct{ Pid int }
	must(t, json.Unmarshal(hs.Payload(), &pid))
	if pid.Pid != w.cmd.Process.Pid {
		t.Fatalf("handshake pid %d, worker pid %d", pid.Pid, w.cmd.Process.Pid)
	}

	if r := reply(t, w.job(t, "1", nil, `{"action":"ack"}`)); r.Type != 2 {
		t.Fatalf("ack: %+v", r)
	}
	if r := reply(t, w.job(t, "2", nil, `not json`)); r.Type != 2 {
		t.Fatalf("not json: %+v", r)
	}
	if r := reply(t, w.job(t, "3", nil, `{"action":"nack"}`)); r.Type != 3 || r.Data.Requeue {
		t.Fatalf("nack: %+v", r)
	}
	if r := reply(t, w.job(t, "4", nil, `{"action":"nack_requeue","delay_seconds":5}`)); r.Type != 3 || !r.Data.Requeue || r.Data.DelaySeconds != 5 {
		t.Fatalf("nack_requeue: %+v", r)
	}
	if r := reply(t, w.job(t, "5", nil, `{"action":"requeue","delay":2,"headers":{"a":["b"]}}`)); r.Type != 4 || r.Data.DelaySeconds != 2 || r.Data.Headers["a"][0] != "b" {
		t.Fatalf("requeue: %+v", r)
	}
	if r := reply(t, w.job(t, "6", nil, `{"requeue_until_header":"x"}`)); r.Type != 4 || r.Data.Headers["x"][0] != "1" {
		t.Fatalf("requeue_until_header without the header: %+v", r)
	}
	if r := reply(t, w.job(t, "6", map[string][]string{"x": {"1"}}, `{"requeue_until_header":"x"}`)); r.Type != 2 {
		t.Fatalf("requeue_until_header with the header: %+v", r)
	}
	if r := reply(t, w.job(t, "7", map[string][]string{"x-sql-delivery": {"3"}}, `{"action":"fail_until","attempt":3}`)); r.Type != 2 {
		t.Fatalf("fail_until at the attempt: %+v", r)
	}
	fail := w.job(t, "8", nil, `{"action":"fail","message":"boom","sleep_ms":50}`)
	if fail.ReadFlags()&frame.ERROR == 0 || string(fail.Payload()) != "boom" {
		t.Fatalf("fail: flags %x payload %q", fail.ReadFlags(), fail.Payload())
	}

	recs := records(t, w.out)
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.ID+":"+r.Action)
		if r.PID != w.cmd.Process.Pid || r.Pipeline != "p" || r.Queue != "q" || r.Driver != "sql" || r.Job != "test.job" || r.TsMs == 0 {
			t.Fatalf("record %+v", r)
		}
	}
	want := "1:ack 2:ack 3:nack 4:nack_requeue 5:requeue 6:requeue 6:ack 7:ack 8:fail"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("recorded %s, want %s", got, want)
	}
	if recs[1].Payload != "not json" || recs[6].Headers["x"][0] != "1" {
		t.Fatalf("records %+v", recs)
	}

	// Stop: the worker exits 0.
	w.send(t, []byte{frame.CONTROL, frame.CodecJSON}, nil, []byte(`{"stop":true}`))
	waitExit(t, w, 0)
}

func TestWorkerCrash(t *testing.T) {
	w := startWorker(t)
	ctx := []byte(`{"id":"c","job":"j","driver":"memory","pipeline":"p","headers":{}}`)
	w.send(t, []byte{frame.CodecProto}, []uint32{uint32(len(ctx))}, append(ctx, `{"action":"crash"}`...))
	waitExit(t, w, 1)
	recs := records(t, w.out)
	if len(recs) != 1 || recs[0].Action != "crash" {
		t.Fatalf("records %+v", recs)
	}
}

func waitExit(t *testing.T, w *phpWorker, code int) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil && code == 0:
		case errors.As(err, &ee) && ee.ExitCode() == code:
		default:
			t.Fatalf("worker exit: %v, want code %d", err, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not exit")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
