package main

import (
	"fmt"
	"io"
	"net/rpc"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fatih/color"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/roadrunner-server/api/v4/plugins/v4/jobs"
	"github.com/roadrunner-server/informer/v5"
	"github.com/roadrunner-server/pool/state/process"
	"github.com/spf13/cobra"
)

func workersCommand(g *globalFlags) *cobra.Command {
	interactive := false
	cmd := &cobra.Command{
		Use:   "workers [plugin...]",
		Short: "Show information about active RoadRunner workers",
		RunE: func(_ *cobra.Command, args []string) error {
			client, err := dialRPC(g)
			if err != nil {
				return err
			}
			defer func() { _ = client.Close() }()

			plugins := args
			if len(plugins) == 0 {
				if err := client.Call("informer.List", true, &plugins); err != nil {
					return fmt.Errorf("failed to get list of plugins: %w", err)
				}
				sort.Strings(plugins) // the RPC answers in map order
			}
			if !interactive {
				showWorkers(os.Stdout, client, plugins)
				return nil
			}
			signals := make(chan os.Signal, 1)
			signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGINT)
			fmt.Print("\033[2J") // clear the screen once, then redraw in place (as goterm does for the stock rr)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-signals:
					return nil
				case <-tick.C:
					fmt.Print("\033[1;1H")
					showWorkers(os.Stdout, client, plugins)
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "render interactive workers table")
	return cmd
}

// showWorkers prints the stock rr's tables: the workers of each plugin, then the jobs pipelines
// of each plugin that has some. A failed call becomes a row saying so, as in the stock rr.
func showWorkers(w io.Writer, client *rpc.Client, plugins []string) {
	for _, plugin := range plugins {
		list := &informer.WorkerList{}
		if err := client.Call("informer.Workers", plugin, &list); err != nil {
			_ = workerTable(w, nil, fmt.Errorf("failed to receive information about %s plugin: %w", plugin, err)).Render()
			continue
		}
		if len(list.Workers) == 0 {
			continue
		}
		fmt.Fprintf(w, "Workers of [%s]:\n", color.HiYellowString(plugin))
		if plugin == "service" { // raw processes: no execs, no status
			_ = serviceWorkerTable(w, list.Workers).Render()
			continue
		}
		_ = workerTable(w, list.Workers, nil).Render()
	}
	for _, plugin := range plugins {
		var states []*jobs.State
		if err := client.Call("informer.Jobs", plugin, &states); err != nil {
			_ = jobsTable(w, nil, fmt.Errorf("failed to receive information about %s plugin: %w", plugin, err)).Render()
			continue
		}
		if len(states) == 0 {
			continue
		}
		fmt.Fprintf(w, "Jobs of [%s]:\n", color.HiYellowString(plugin))
		_ = jobsTable(w, states, nil).Render()
	}
}

// newTable is the stock rr's table look: upper-case headers, left-aligned rows.
func newTable(w io.Writer, header []string, wrapHeader bool) *tablewriter.Table {
	hf := tw.CellFormatting{AutoFormat: tw.On}
	if !wrapHeader {
		hf.AutoWrap = int(tw.Off)
	}
	t := tablewriter.NewTable(w, tablewriter.WithConfig(tablewriter.Config{
		Header:   tw.CellConfig{Formatting: hf},
		MaxWidth: 150,
		Row:      tw.CellConfig{Alignment: tw.CellAlignment{Global: tw.AlignLeft}},
	}))
	t.Header(header)
	return t
}

func workerTable(w io.Writer, workers []*process.State, err error) *tablewriter.Table {
	t := newTable(w, []string{"PID", "Status", "Execs", "Memory", "CPU%", "Created"}, true)
	if err != nil {
		_ = t.Append([]string{"0", err.Error(), "ERROR", "ERROR", "ERROR", "ERROR"})
		return t
	}
	sort.Slice(workers, func(i, j int) bool { return workers[i].Pid < workers[j].Pid })
	for _, s := range workers {
		_ = t.Append([]string{
			strconv.FormatInt(s.Pid, 10),
			workerStatus(s.StatusStr),
			humanize.Comma(int64(s.NumExecs)), //nolint:gosec // a count of executions
			humanize.Bytes(s.MemoryUsage),
			strconv.FormatFloat(s.CPUPercent, 'f', 2, 64),
			humanize.RelTime(time.Unix(0, s.Created), time.Now(), "ago", ""),
		})
	}
	return t
}

func serviceWorkerTable(w io.Writer, workers []*process.State) *tablewriter.Table {
	t := newTable(w, []string{"PID", "Memory", "CPU%", "Command"}, true)
	sort.Slice(workers, func(i, j int) bool { return workers[i].Pid < workers[j].Pid })
	for _, s := range workers {
		_ = t.Append([]string{strconv.FormatInt(s.Pid, 10), humanize.Bytes(s.MemoryUsage), strconv.FormatFloat(s.CPUPercent, 'f', 2, 64), s.Command})
	}
	return t
}

func jobsTable(w io.Writer, states []*jobs.State, err error) *tablewriter.Table {
	t := newTable(w, []string{"Status", "Pipeline", "Driver", "Queue", "Active", "Delayed", "Reserved"}, false)
	if err != nil {
		_ = t.Append([]string{err.Error(), "ERROR", "ERROR", "ERROR", "ERROR", "ERROR", "ERROR"})
		return t
	}
	sort.Slice(states, func(i, j int) bool { return states[i].Pipeline < states[j].Pipeline })
	for _, s := range states {
		status := "PAUSED/STOPPED"
		if s.Ready {
			status = "READY"
		}
		_ = t.Append([]string{status, s.Pipeline, s.Driver, s.Queue,
			strconv.FormatInt(s.Active, 10), strconv.FormatInt(s.Delayed, 10), strconv.FormatInt(s.Reserved, 10)})
	}
	return t
}

func workerStatus(status string) string {
	switch status {
	case "inactive", "invalid":
		return color.YellowString(status)
	case "ready":
		return color.CyanString(status)
	case "working":
		return color.GreenString(status)
	case "stopped", "errored":
		return color.RedString(status)
	}
	return status
}
