package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Missed-tick policies of a schedule.
const (
	// MissedOnce pushes one job for the latest tick missed while no node ran.
	MissedOnce = "once"
	// MissedSkip pushes nothing for missed ticks.
	MissedSkip = "skip"
)

// Schedule is one entry of `sql.schedules`: a job pushed to a pipeline at every tick of a cron
// expression, once across every node that runs it.
type Schedule struct {
	Name string
	// Cron is the expression as written; Spec is it parsed in Location.
	Cron     string
	Spec     cron.Schedule
	Timezone string
	Location *time.Location
	Pipeline string
	Job      string
	Payload  string
	Headers  map[string][]string
	Missed   string
}

// Next is the first tick strictly after t.
func (s *Schedule) Next(t time.Time) time.Time { return s.Spec.Next(t.In(s.Location)) }

var scheduleKeys = []string{"name", "cron", "timezone", "pipeline", "job", "payload", "headers", "missed"}

// scheduleName: the name is part of job ids and of a primary key (VARCHAR(191) on MySQL).
var scheduleName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,126}$`)

// cronParser reads five fields (minute first) or six (seconds first), and descriptors such as
// @hourly and @every 1m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedules validates the `sql.schedules` list (nil when absent).
func ParseSchedules(raw any) ([]*Schedule, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("sql.schedules: must be a list of schedules (each with keys %s), got %T", strings.Join(scheduleKeys, ", "), raw)
	}
	var (
		out   []*Schedule
		errs  []string
		names = map[string]int{}
	)
	for i, item := range list {
		where := fmt.Sprintf("sql.schedules[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: must be a mapping with keys %s, got %T", where, strings.Join(scheduleKeys, ", "), item))
			continue
		}
		if n, ok := m["name"].(string); ok && strings.TrimSpace(n) != "" {
			where = fmt.Sprintf("sql.schedules[%d] (%q)", i, strings.TrimSpace(n))
		}
		s, err := parseSchedule(where, m)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if first, dup := names[s.Name]; dup {
			errs = append(errs, fmt.Sprintf("%s: option \"name\": %q is already the name of sql.schedules[%d]: names must be unique", where, s.Name, first))
			continue
		}
		names[s.Name] = i
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

func parseSchedule(where string, raw map[string]any) (*Schedule, error) {
	o := newOptions(where, raw)
	s := &Schedule{
		Name:     o.String("name", ""),
		Cron:     o.String("cron", ""),
		Timezone: o.String("timezone", "UTC"),
		Pipeline: o.String("pipeline", ""),
		Job:      o.String("job", ""),
		Missed:   o.OneOf("missed", MissedOnce, MissedOnce, MissedSkip),
	}
	// The payload is taken as written (not trimmed).
	if v, ok := o.lookup("payload"); ok {
		p, isStr := v.(string)
		if !isStr {
			o.fail("payload", "must be a string (the job's body as the worker receives it), got %T", v)
		}
		s.Payload = p
	} else if v, isStr := raw["payload"].(string); isStr {
		s.Payload = v // blank but present
	}
	s.Headers = scheduleHeaders(o)
	switch {
	case s.Name == "":
		o.fail("name", "is required (a unique name: letters, digits, '_', '.', ':', '-', at most 127)")
	case !scheduleName.MatchString(s.Name):
		o.fail("name", "%q: use letters, digits, '_', '.', ':' and '-' (not first), at most 127", s.Name)
	}
	for _, key := range []string{"pipeline", "job"} {
		if (key == "pipeline" && s.Pipeline == "") || (key == "job" && s.Job == "") {
			o.fail(key, "is required")
		}
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil || s.Timezone == "Local" {
		o.fail("timezone", "%q is not an IANA time zone name (such as UTC or Europe/Paris)", s.Timezone)
	}
	s.Location = loc
	if s.Cron == "" {
		o.fail("cron", "is required: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or a descriptor such as @hourly or @every 1m")
	} else if strings.HasPrefix(s.Cron, "TZ=") || strings.HasPrefix(s.Cron, "CRON_TZ=") {
		o.fail("cron", "%q: set the time zone with the option \"timezone\", not in the expression", s.Cron)
	} else if spec, err := cronParser.Parse(s.Cron); err != nil {
		o.fail("cron", "%q: %v (allowed: 5 fields minute hour day-of-month month day-of-week, 6 with seconds first, or a descriptor such as @hourly or @every 1m)", s.Cron, err)
	} else {
		s.Spec = spec
	}
	if err := o.Err(scheduleKeys); err != nil {
		return nil, err
	}
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("%s: option \"cron\": %q never fires", where, s.Cron)
	}
	return s, nil
}

// scheduleHeaders reads `headers`: a mapping of header name to a list of strings, or to one
// string (a list of one).
func scheduleHeaders(o *options) map[string][]string {
	v, ok := o.lookup("headers")
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		o.fail("headers", "must be a mapping of header name to a string or a list of strings, got %T", v)
		return nil
	}
	out := make(map[string][]string, len(m))
	for name, val := range m {
		switch t := val.(type) {
		case string:
			out[name] = []string{t}
		case []any:
			list := make([]string, 0, len(t))
			for _, e := range t {
				str, isStr := e.(string)
				if !isStr {
					o.fail("headers", "header %q: list values must be strings, got %T", name, e)
					break
				}
				list = append(list, str)
			}
			out[name] = list
		case []string:
			out[name] = t
		default:
			o.fail("headers", "header %q must be a string or a list of strings, got %T", name, val)
		}
	}
	return out
}
