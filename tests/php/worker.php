<?php
/**
 * A self-contained RoadRunner jobs worker for tests and demos (PHP 8.2 CLI, no composer, no spiral
 * libraries). It speaks goridge v3 frames over stdin/stdout (RR_RELAY=pipes). Nothing but frames is
 * ever written to stdout: logs go to stderr (set RR_WORKER_VERBOSE=1 for one line per job).
 *
 * PAYLOAD LANGUAGE. The job body is a JSON object telling the worker what to do. A body that is not
 * a JSON object (plain text, a JSON string or number, invalid JSON) is simply acked.
 *
 *   "action"        what to reply (default "ack"):
 *       ack             ACK (type 2)
 *       nack            NACK (type 3), requeue false: the job has failed
 *       nack_requeue    NACK (type 3), requeue true, after "delay_seconds"
 *       requeue         REQUEUE (type 4) with "delay_seconds" and "headers" (the driver merges them)
 *       fail            an ERROR frame carrying "message": a worker error, RoadRunner calls Nack()
 *       crash           exit(1) without replying: a worker error, RoadRunner calls Nack()
 *       requeue_until   (legacy) same as "requeue_until_header": <"header"> with action ack
 *       fail_until      fail while the job's "x-sql-delivery" header (the delivery number the sql
 *                       driver adds) is below "attempt" (default 2), then ack
 *       nack_until_file NACK (type 3, requeue false) while the file named by "file" does not exist,
 *                       then ack: a job that fails until the test fixes what it needs
 *   "delay_seconds" delay for requeue / nack_requeue (alias: "delay"); default 0
 *   "headers"       object string => array of strings, sent with requeue
 *   "message"       the NACK message or the ERROR frame's text
 *   "sleep_ms"      sleep this long before replying (the job is recorded first)
 *   "hold_file"     before replying, wait until this file exists (at most 60 s): the test decides
 *                   when the job ends, instead of guessing a sleep long enough for the machine
 *   "requeue_until_header": "x"
 *                   while the job's headers lack "x": reply REQUEUE (delay_seconds) adding header
 *                   x = ["1"] (plus "headers"); once the job carries "x": do "action" (default ack).
 *                   E.g. {"requeue_until_header":"retried"} is delivered twice, then acked.
 *   "requeue_times": n
 *                   reply REQUEUE (delay_seconds) with header "requeues" = [k+1] while the job's
 *                   "requeues" header k is below n; then do "action" (default ack). Delivered n+1 times.
 *
 * RECORDING. For every job received, before replying (and before sleeping), one JSON line is appended
 * to the file named by $RR_TEST_OUT (if set), under an exclusive flock, so concurrent workers can share
 * the file:
 *   {"id","job","pipeline","queue","driver","headers","payload","action","pid","ts_ms"}
 * "payload" is the raw body as a string; "action" is what the worker does with this delivery
 * (ack, nack, nack_requeue, requeue, fail, crash), after resolving requeue_until_header/fail_until.
 * With $RR_TEST_END_OUT set, {"id","pid","end_ms"} is appended there when the work (the sleep) is
 * done, right before the reply.
 * COUNTING. With $RR_TEST_COUNT_DIR set, each worker keeps the number of jobs it received in the
 * file named by its pid in that directory, rewritten (atomically, by a rename) every 100 jobs: a
 * count for long benchmarks, where a line per job would grow a file by gigabytes.
 *
 * PROTOCOL (goridge v3 frames, as RoadRunner's pool speaks them): 12-byte header, little-endian: byte 0 = 0x10 | HL
 * (header length in 32-bit words), byte 1 = flags, bytes 2-5 payload length, bytes 6-9 CRC32 of bytes
 * 0-5, byte 10 stream bits, byte 11 zero; then HL-3 option words; then the payload. A job frame has one
 * option word, the context length: payload = context JSON ‖ body. The reply has one option word (0) and
 * the body {"type":N,"data":{...}}. Control frames: {"pid":n} (answered with our pid) and {"stop":true}.
 */

declare(strict_types=1);

const FLAG_CONTROL = 0x01;
const FLAG_CODEC_RAW = 0x04;
const FLAG_CODEC_JSON = 0x08;
const FLAG_ERROR = 0x40;

const TYPE_ACK = 2;
const TYPE_NACK = 3;
const TYPE_REQUEUE = 4;

function logf(string $format, mixed ...$args): void
{
    fwrite(STDERR, sprintf('[worker %d] ', getmypid()) . vsprintf($format, $args) . "\n");
}

function read_exact($stream, int $n): string
{
    $buf = '';
    while (strlen($buf) < $n) {
        $chunk = fread($stream, $n - strlen($buf));
        if ($chunk === false || $chunk === '') {
            if (feof($stream) || $chunk === false) {
                exit(0); // RoadRunner closed the pipe
            }
            continue;
        }
        $buf .= $chunk;
    }
    return $buf;
}

/** @return array{0:int,1:list<int>,2:string} flags, option words, payload */
function read_frame($stream): array
{
    $h = read_exact($stream, 12);
    $hl = ord($h[0]) & 0x0F;
    $flags = ord($h[1]);
    $len = unpack('V', substr($h, 2, 4))[1];
    $crc = unpack('V', substr($h, 6, 4))[1];
    if ($crc !== crc32(substr($h, 0, 6))) {
        logf('frame CRC mismatch (got %08x, want %08x): exiting', $crc, crc32(substr($h, 0, 6)));
        exit(2);
    }
    $options = $hl > 3 ? array_values(unpack('V*', read_exact($stream, ($hl - 3) * 4))) : [];
    return [$flags, $options, $len > 0 ? read_exact($stream, $len) : ''];
}

function write_all($stream, string $data): void
{
    while ($data !== '') {
        $n = fwrite($stream, $data);
        if ($n === false || $n === 0) {
            logf('cannot write to stdout: exiting');
            exit(3);
        }
        $data = substr($data, $n);
    }
    fflush($stream);
}

/** @param list<int> $options */
function write_frame(int $flags, array $options, string $payload): void
{
    $head = pack('CCV', 0x10 | (3 + count($options)), $flags, strlen($payload));
    $head .= pack('V', crc32($head)) . "\x00\x00";
    foreach ($options as $o) {
        $head .= pack('V', $o);
    }
    write_all(STDOUT, $head . $payload);
}

function reply(int $type, array $data = []): void
{
    $body = json_encode(['type' => $type, 'data' => (object)$data], JSON_UNESCAPED_SLASHES);
    write_frame(FLAG_CODEC_RAW, [0], $body);
}

function reply_error(string $message): void
{
    write_frame(FLAG_ERROR | FLAG_CODEC_RAW, [0], $message);
}

function record(string $file, array $entry): void
{
    if ($file === '') {
        return;
    }
    $fh = @fopen($file, 'ab');
    if ($fh === false) {
        logf('cannot open RR_TEST_OUT %s', $file);
        return;
    }
    flock($fh, LOCK_EX);
    fwrite($fh, json_encode($entry, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    fflush($fh);
    flock($fh, LOCK_UN);
    fclose($fh);
}

/** @return array<string, list<string>> */
function headers_of(mixed $h): array
{
    $out = [];
    if (!is_array($h)) {
        return $out;
    }
    foreach ($h as $k => $v) {
        $out[(string)$k] = array_map('strval', is_array($v) ? array_values($v) : [$v]);
    }
    return $out;
}

$out = getenv('RR_TEST_OUT') ?: '';
$countDir = getenv('RR_TEST_COUNT_DIR') ?: '';
$received = 0;
$verbose = getenv('RR_WORKER_VERBOSE') === '1';

while (true) {
    [$flags, $options, $payload] = read_frame(STDIN);

    if ($flags & FLAG_CONTROL) {
        $cmd = json_decode($payload, true);
        if (!is_array($cmd)) {
            continue;
        }
        if (!empty($cmd['stop'])) {
            if ($verbose) {
                logf('stop');
            }
            exit(0);
        }
        if (array_key_exists('pid', $cmd)) {
            write_frame(FLAG_CONTROL | FLAG_CODEC_JSON, [], json_encode(['pid' => getmypid()]));
        }
        continue;
    }

    $ctxLen = min($options[0] ?? 0, strlen($payload));
    $ctx = json_decode(substr($payload, 0, $ctxLen), true);
    if (!is_array($ctx)) {
        $ctx = [];
    }
    $body = (string)substr($payload, $ctxLen);
    $task = json_decode($body, true);
    if (!is_array($task) || array_is_list($task)) {
        $task = [];
    }
    $headers = headers_of($ctx['headers'] ?? []);

    $action = is_string($task['action'] ?? null) ? $task['action'] : 'ack';
    $delay = (int)($task['delay_seconds'] ?? $task['delay'] ?? 0);
    $replyHeaders = headers_of($task['headers'] ?? []);
    $message = is_string($task['message'] ?? null) ? $task['message'] : 'failed by the test payload';

    if ($action === 'requeue_until') {
        $task['requeue_until_header'] = is_string($task['header'] ?? null) ? $task['header'] : 'requeued';
        $action = 'ack';
    }
    if (is_string($task['requeue_until_header'] ?? null) && !isset($headers[$task['requeue_until_header']])) {
        $replyHeaders[$task['requeue_until_header']] = ['1'];
        $action = 'requeue';
    }
    if (is_int($task['requeue_times'] ?? null) && (int)($headers['requeues'][0] ?? 0) < $task['requeue_times']) {
        $replyHeaders['requeues'] = [(string)((int)($headers['requeues'][0] ?? 0) + 1)];
        $action = 'requeue';
    }
    if ($action === 'nack_until_file') {
        $action = is_string($task['file'] ?? null) && file_exists($task['file']) ? 'ack' : 'nack';
    }
    if ($action === 'fail_until') {
        $attempt = (int)($headers['x-sql-delivery'][0] ?? 1);
        $action = $attempt < (int)($task['attempt'] ?? 2) ? 'fail' : 'ack';
        $message = "failing attempt $attempt";
    }
    if (!in_array($action, ['ack', 'nack', 'nack_requeue', 'requeue', 'fail', 'crash'], true)) {
        logf('unknown action %s: acking', $action);
        $action = 'ack';
    }

    record($out, [
        'id' => (string)($ctx['id'] ?? ''),
        'job' => (string)($ctx['job'] ?? ''),
        'pipeline' => (string)($ctx['pipeline'] ?? ''),
        'queue' => (string)($ctx['queue'] ?? ''),
        'driver' => (string)($ctx['driver'] ?? ''),
        'headers' => (object)$headers,
        'payload' => $body,
        'action' => $action,
        'pid' => getmypid(),
        'ts_ms' => (int)floor(microtime(true) * 1000),
    ]);
    if ($verbose) {
        logf('%s job %s (%s) from %s', $action, $ctx['id'] ?? '?', $ctx['job'] ?? '?', $ctx['pipeline'] ?? '?');
    }
    if ($countDir !== '' && ++$received % 100 === 0) {
        $countFile = $countDir . '/' . getmypid();
        file_put_contents($countFile . '.tmp', (string)$received);
        rename($countFile . '.tmp', $countFile);
    }

    if (($sleep = (int)($task['sleep_ms'] ?? 0)) > 0) {
        usleep($sleep * 1000);
    }
    if (is_string($hold = $task['hold_file'] ?? null) && $hold !== '') {
        $until = microtime(true) + 60;
        while (!file_exists($hold) && microtime(true) < $until) {
            usleep(10000);
        }
    }
    // The end of the work (before the reply), for the tests that check no job runs twice at once.
    if (($endOut = getenv('RR_TEST_END_OUT') ?: '') !== '') {
        record($endOut, ['id' => (string)($ctx['id'] ?? ''), 'pid' => getmypid(), 'end_ms' => (int)floor(microtime(true) * 1000)]);
    }

    switch ($action) {
        case 'nack':
            reply(TYPE_NACK, ['message' => $message, 'requeue' => false]);
            break;
        case 'nack_requeue':
            reply(TYPE_NACK, ['message' => $message, 'requeue' => true, 'delay_seconds' => $delay]);
            break;
        case 'requeue':
            reply(TYPE_REQUEUE, ['delay_seconds' => $delay, 'headers' => (object)$replyHeaders]);
            break;
        case 'fail':
            reply_error($message);
            break;
        case 'crash':
            logf('crashing on job %s as asked', $ctx['id'] ?? '?');
            exit(1);
        default:
            reply(TYPE_ACK);
    }
}
