package main

import (
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"sort"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	jobsProto "github.com/roadrunner-server/api/v4/build/jobs/v1"
	"github.com/spf13/cobra"
)

// jobsCommand is the stock `rr jobs --list | --pause P | --resume P | --destroy P` (P: pipe1,pipe2).
// The verb may also be written as a word (`rr jobs pause P`), as some of RoadRunner's pages do;
// with a flag given, every argument is a pipeline (even one named "list").
func jobsCommand(g *globalFlags) *cobra.Command {
	var pause, destroy, resume, list bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Jobs pipelines manipulation",
		Example: "  rr jobs --list\n  rr jobs --pause pipe1,pipe2\n  rr jobs --resume pipe1,pipe2\n  rr jobs --destroy pipe1,pipe2\n" +
			"  rr jobs pause pipe1 pipe2   (the same as --pause)",
		RunE: func(_ *cobra.Command, args []string) error {
			verb := ""
			switch {
			case pause:
				verb = "pause"
			case destroy:
				verb = "destroy"
			case resume:
				verb = "resume"
			case list:
				verb = "list"
			case len(args) > 0 && (args[0] == "pause" || args[0] == "destroy" || args[0] == "resume" || args[0] == "list"):
				verb, args = args[0], args[1:]
			default:
				return errors.New("command should be in form of: `rr jobs --<destroy/resume/pause> pipe1,pipe2`")
			}
			pipelines := splitPipelines(args)
			if verb != "list" && len(pipelines) == 0 {
				return fmt.Errorf("incorrect command usage, should be: rr jobs --%s pipe1,pipe2", verb)
			}
			client, err := dialRPC(g)
			if err != nil {
				return err
			}
			defer func() { _ = client.Close() }()
			return runJobs(client, verb, pipelines, g.silent)
		},
	}
	cmd.Flags().BoolVar(&pause, "pause", false, "pause pipelines")
	cmd.Flags().BoolVar(&destroy, "destroy", false, "destroy pipelines")
	cmd.Flags().BoolVar(&resume, "resume", false, "resume pipelines")
	cmd.Flags().BoolVar(&list, "list", false, "list pipelines")
	return cmd
}

// splitPipelines takes "a,b" as the stock rr does, and also "a b" and "a, b".
func splitPipelines(args []string) []string {
	var out []string
	for _, a := range args {
		for _, p := range strings.Split(a, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// runJobs calls the jobs RPC and prints the pipelines concerned, as the stock rr does: pause and
// resume print the names given, destroy the ones destroyed, list all (without -s).
func runJobs(client *rpc.Client, verb string, pipelines []string, silent bool) error {
	req := &jobsProto.Pipelines{Pipelines: pipelines}
	var shown []string
	switch verb {
	case "list":
		resp := &jobsProto.Pipelines{}
		if err := client.Call("jobs.List", &jobsProto.Empty{}, resp); err != nil {
			return err
		}
		shown, silent = resp.GetPipelines(), false
		sort.Strings(shown) // the RPC answers in map order
	case "destroy":
		resp := &jobsProto.Pipelines{}
		if err := client.Call("jobs.Destroy", req, resp); err != nil {
			return err
		}
		shown = resp.GetPipelines()
	case "pause":
		if err := client.Call("jobs.Pause", req, &jobsProto.Empty{}); err != nil {
			return err
		}
		shown = pipelines
	case "resume":
		if err := client.Call("jobs.Resume", req, &jobsProto.Empty{}); err != nil {
			return err
		}
		shown = pipelines
	}
	if !silent {
		return renderPipelines(os.Stdout, shown).Render()
	}
	return nil
}

// renderPipelines is the stock rr's one-column table of pipeline names.
func renderPipelines(w io.Writer, pipelines []string) *tablewriter.Table {
	t := tablewriter.NewTable(w, tablewriter.WithConfig(tablewriter.Config{
		Header:   tw.CellConfig{Formatting: tw.CellFormatting{AutoFormat: tw.On, AutoWrap: int(tw.Off)}},
		MaxWidth: 150,
		Row:      tw.CellConfig{Alignment: tw.CellAlignment{Global: tw.AlignLeft}},
	}))
	t.Header([]string{"Pipeline(s)"})
	for _, p := range pipelines {
		_ = t.Append([]string{p})
	}
	return t
}
