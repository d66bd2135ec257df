package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var funcs = template.FuncMap{
	"num":     num,
	"age":     age,
	"ago":     ago,
	"stamp":   stamp,
	"pretty":  pretty,
	"short":   short,
	"headers": sortedHeaders,
	"rate":    rate,
}

// num writes an integer with thin groups of three digits: 1 234 567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteRune('\u202f')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// rate is a per-minute count, "–" when nothing was recorded.
func rate(n int64, known bool) string {
	if !known {
		return "–"
	}
	return num(n)
}

// age writes a duration the way an operator reads it: 0s, 42s, 3m 12s, 5h 03m, 2d 4h.
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func ago(t time.Time) string {
	d := time.Since(t)
	if d < time.Second {
		return "just now"
	}
	return age(d) + " ago"
}

// stamp is a time in UTC to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// pretty indents a JSON payload; anything else is shown as it is (invalid UTF-8 as its quoted form).
func pretty(payload []byte) string {
	var out bytes.Buffer
	if json.Valid(payload) && json.Indent(&out, payload, "", "  ") == nil {
		return out.String()
	}
	if !utf8.Valid(payload) {
		return strconv.Quote(string(payload))
	}
	return string(payload)
}

// short cuts a text to n runes with an ellipsis.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

type headerLine struct {
	Name   string
	Values string
}

func sortedHeaders(h map[string][]string) []headerLine {
	out := make([]headerLine, 0, len(h))
	for k, v := range h {
		out = append(out, headerLine{k, strings.Join(v, ", ")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
