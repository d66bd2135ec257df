package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rr-sql/sqljobs/config"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// pluginSchemas are schema.json compiled twice: its root (the `sql:` section) and its
// $defs/pipeline (a `driver: sql` pipeline's config).
var pluginSchemas = sync.OnceValues(func() ([2]*jsonschema.Schema, error) {
	path, err := filepath.Abs(filepath.Join("..", "schema.json"))
	if err != nil {
		return [2]*jsonschema.Schema{}, err
	}
	c := jsonschema.NewCompiler()
	section, err := c.Compile(path)
	if err != nil {
		return [2]*jsonschema.Schema{}, err
	}
	pipeline, err := c.Compile(path + "#/$defs/pipeline")
	return [2]*jsonschema.Schema{section, pipeline}, err
})

// checkAgainstSchema validates the plugin's parts of an .rr.yaml: its `sql:` section and the
// config of each `driver: sql` pipeline. The other plugins' keys are theirs to check.
func checkAgainstSchema(rrYAML string) error {
	schemas, err := pluginSchemas()
	if err != nil {
		return fmt.Errorf("schema.json: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(rrYAML), &doc); err != nil {
		return fmt.Errorf("parse yaml: %w", err)
	}
	var errs []string
	check := func(where string, s *jsonschema.Schema, v any) {
		// Through JSON: the validator takes what encoding/json gives, whatever yaml.v3 decoded.
		b, err := json.Marshal(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", where, err))
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", where, err))
			return
		}
		if err := s.Validate(inst); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", where, err))
		}
	}
	if sql, ok := doc["sql"]; ok {
		check("sql", schemas[0], sql)
	}
	jobsSection, _ := doc["jobs"].(map[string]any)
	pipelines, _ := jobsSection["pipelines"].(map[string]any)
	names := make([]string, 0, len(pipelines))
	for name := range pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, _ := pipelines[name].(map[string]any)
		if p["driver"] != "sql" {
			continue
		}
		if cfg, ok := p["config"]; ok && cfg != nil {
			check("jobs.pipelines."+name+".config", schemas[1], cfg)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// TestSchemaAcceptsTheExamples: the example .rr.yaml and every YAML example of the README are
// valid against schema.json, and the plugin's own parser takes them too. (Every rr the
// integration tests start is checked as well: start validates its config.)
func TestSchemaAcceptsTheExamples(t *testing.T) {
	rr, err := os.ReadFile(filepath.Join("..", ".rr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]string{".rr.yaml": string(rr)}
	for i, block := range readmeBlocks(t, "yaml") {
		examples[fmt.Sprintf("README yaml example %d", i+1)] = block
	}
	if len(examples) < 4 {
		t.Fatalf("found %d examples: the README's yaml blocks are gone?", len(examples))
	}
	for name, text := range examples {
		if err := checkAgainstSchema(text); err != nil {
			t.Errorf("%s is not valid against schema.json:\n%v", name, err)
		}
		if err := parseWithThePlugin(text); err != nil {
			t.Errorf("%s is refused by the plugin: %v", name, err)
		}
	}
}

// TestSchemaRefusesWhatThePluginRefuses: unknown keys and values of the wrong type fail
// against schema.json with an error that names the key, as they fail in the plugin.
func TestSchemaRefusesWhatThePluginRefuses(t *testing.T) {
	cases := []struct {
		name, yaml, key string
	}{
		{"unknown key of the sql section", "sql:\n  conections: {}\n", "conections"},
		{"unknown connection option", "sql:\n  connections:\n    default:\n      dsn: a.db\n      timeout: 5s\n", "timeout"},
		{"dialect not spoken", "sql:\n  connections:\n    default:\n      dialect: oracle\n      dsn: x\n", "dialect"},
		{"duration as a number", "sql:\n  connections:\n    default:\n      heartbeat_interval: 5\n", "heartbeat_interval"},
		{"unknown pipeline option", pipelineDoc("prefech: 10"), "prefech"},
		{"prefetch as a string", pipelineDoc("prefetch: many"), "prefetch"},
		{"prefetch out of range", pipelineDoc("prefetch: 0"), "prefetch"},
		{"lease that is not a duration", pipelineDoc("lease: soon"), "lease"},
		{"unknown overflow option", pipelineDoc("group_by: tenant\n        overflow: {ready_over: 10, to: other, interval: 1s}"), "interval"},
		{"size without a number", pipelineDoc("max_payload: MB"), "max_payload"},
		{"unknown dashboard option", "sql:\n  dashboard:\n    listen: 127.0.0.1:8089\n    readonly: true\n", "readonly"},
		{"dashboard read_only as a string", "sql:\n  dashboard:\n    read_only: maybe\n", "read_only"},
		{"dashboard listen without a port", "sql:\n  dashboard:\n    listen: 127.0.0.1\n", "listen"},
		{"dashboard user without a hash", "sql:\n  dashboard:\n    auth:\n      user: ops\n", "password_hash"},
		{"dashboard token too short", "sql:\n  dashboard:\n    auth:\n      token: abc\n", "token"},
		{"unknown dashboard auth option", "sql:\n  dashboard:\n    auth:\n      password: x\n", "password"},
		{"dashboard retention not a duration", "sql:\n  dashboard:\n    history_retention: 7\n", "history_retention"},
		{"unique_while not one of its values", pipelineDoc("unique_while: running"), "unique_while"},
		{"unknown schedule option", "sql:\n  schedules:\n    - {name: a, cron: '* * * * *', pipeline: p, job: j, every: 1m}\n", "every"},
		{"schedule without a cron", "sql:\n  schedules:\n    - {name: a, pipeline: p, job: j}\n", "cron"},
		{"missed policy not known", "sql:\n  schedules:\n    - {name: a, cron: '* * * * *', pipeline: p, job: j, missed: all}\n", "missed"},
		{"header value a number", "sql:\n  schedules:\n    - {name: a, cron: '* * * * *', pipeline: p, job: j, headers: {h: 1}}\n", "headers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkAgainstSchema(c.yaml)
			if err == nil {
				t.Fatalf("schema.json accepts:\n%s", c.yaml)
			}
			if !strings.Contains(err.Error(), c.key) {
				t.Errorf("the schema's error does not name %q: %v", c.key, err)
			}
			if parseWithThePlugin(c.yaml) == nil {
				t.Errorf("the plugin accepts what schema.json refuses:\n%s", c.yaml)
			}
		})
	}
	// Other plugins' keys are not the schema's business.
	if err := checkAgainstSchema("jobs:\n  num_pollers: 4\n  pipelines:\n    m:\n      driver: memory\n      config: {anything: 1}\n"); err != nil {
		t.Errorf("a memory pipeline's config was checked: %v", err)
	}
}

func pipelineDoc(options string) string {
	return "jobs:\n  pipelines:\n    p:\n      driver: sql\n      config:\n        " + options + "\n"
}

// parseWithThePlugin reads the plugin's parts of an .rr.yaml with the plugin's own parser.
func parseWithThePlugin(rrYAML string) error {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(rrYAML), &doc); err != nil {
		return err
	}
	sql, _ := doc["sql"].(map[string]any)
	if _, err := config.ParseGlobal(sql); err != nil {
		return err
	}
	jobsSection, _ := doc["jobs"].(map[string]any)
	pipelines, _ := jobsSection["pipelines"].(map[string]any)
	for name, raw := range pipelines {
		p, _ := raw.(map[string]any)
		if p["driver"] != "sql" {
			continue
		}
		cfg, _ := p["config"].(map[string]any)
		if _, err := config.ParsePipeline(name, cfg); err != nil {
			return err
		}
	}
	return nil
}
