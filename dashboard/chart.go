package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/rr-sql/sqljobs/store"
)

// span is a chart's time range: the last hour by minute or the last day by ten minutes.
type span struct {
	Name  string
	Total time.Duration
	Step  time.Duration
}

var (
	spanHour = span{"hour", time.Hour, time.Minute}
	spanDay  = span{"day", 24 * time.Hour, 10 * time.Minute}
)

func spanOf(name string) span {
	if name == spanDay.Name {
		return spanDay
	}
	return spanHour
}

// bucket is one bar of a chart.
type bucket struct {
	At                        time.Time
	Pushed, Processed, Failed int64
	Depth                     int64
	Known                     bool
}

// buckets lays a pipeline's minutes on the span's steps ending with the last complete minute.
func buckets(minutes []store.HistoryMinute, sp span, now time.Time) []bucket {
	end := now.Truncate(time.Minute)
	start := end.Add(-sp.Total).Truncate(sp.Step)
	n := int(end.Sub(start)/sp.Step) + 1
	out := make([]bucket, n)
	for i := range out {
		out[i].At = start.Add(time.Duration(i) * sp.Step)
	}
	for _, m := range minutes {
		i := int(m.Minute.Sub(start) / sp.Step)
		if m.Minute.Before(start) || i < 0 || i >= n {
			continue
		}
		b := &out[i]
		b.Pushed += m.Pushed
		b.Processed += m.Processed
		b.Failed += m.Failed
		b.Depth = max(b.Depth, m.Depth)
		b.Known = true
	}
	return out
}

// chartSVG draws the throughput per step as bars (processed, failed on top) against the left
// scale and the queue depth as a line against the right one. Only numbers reach the SVG text.
func chartSVG(bs []bucket, sp span, width, height int, axes bool) template.HTML {
	var maxRate, maxDepth int64 = 1, 1
	for _, b := range bs {
		maxRate = max(maxRate, b.Processed+b.Failed)
		maxDepth = max(maxDepth, b.Depth)
	}
	padL, padR, padT, padB := 0.0, 0.0, 4.0, 2.0
	if axes {
		maxRate, maxDepth = roundUp(maxRate), roundUp(maxDepth)
		padL, padR, padT, padB = 44, 52, 10, 22
	}
	w, h := float64(width), float64(height)
	plotW, plotH := w-padL-padR, h-padT-padB
	step := plotW / float64(max(len(bs), 1))
	// A chart with axes keeps its proportions (its text would stretch); a sparkline fills its box.
	class, aspect := "chart", ""
	if !axes {
		class, aspect = "spark-svg", ` preserveAspectRatio="none"`
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="%s" viewBox="0 0 %d %d"%s role="img" aria-label="jobs processed and failed per %s, and queue depth, over the last %s">`,
		class, width, height, aspect, stepName(sp), sp.Name)
	if axes {
		for i := 0; i <= 4; i++ {
			y := padT + plotH*float64(i)/4
			fmt.Fprintf(&sb, `<line class="grid" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, padL, y, padL+plotW, y)
			fmt.Fprintf(&sb, `<text class="axis" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, padL-6, y+4, compact(maxRate*int64(4-i)/4))
			fmt.Fprintf(&sb, `<text class="axis depth-axis" x="%.1f" y="%.1f">%s</text>`, padL+plotW+6, y+4, compact(maxDepth*int64(4-i)/4))
		}
		for i, b := range bs {
			if len(bs) > 1 && (i == 0 || i == len(bs)-1 || i == len(bs)/2) {
				anchor := "middle"
				if i == 0 {
					anchor = "start"
				} else if i == len(bs)-1 {
					anchor = "end"
				}
				fmt.Fprintf(&sb, `<text class="axis" x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, padL+step*float64(i)+step/2, h-6, anchor, b.At.UTC().Format("15:04"))
			}
		}
	}
	gap := min(step*0.2, 2)
	for i, b := range bs {
		x := padL + step*float64(i) + gap/2
		if b.Processed > 0 {
			ph := plotH * float64(b.Processed) / float64(maxRate)
			fmt.Fprintf(&sb, `<rect class="bar-ok" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %d processed</title></rect>`,
				x, padT+plotH-ph, step-gap, ph, b.At.UTC().Format("15:04"), b.Processed)
		}
		if b.Failed > 0 {
			base := plotH * float64(b.Processed) / float64(maxRate)
			fh := plotH * float64(b.Failed) / float64(maxRate)
			fmt.Fprintf(&sb, `<rect class="bar-failed" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %d failed</title></rect>`,
				x, padT+plotH-base-fh, step-gap, fh, b.At.UTC().Format("15:04"), b.Failed)
		}
	}
	var pts []string
	for i, b := range bs {
		if !b.Known {
			continue
		}
		y := padT + plotH - plotH*float64(b.Depth)/float64(maxDepth)
		pts = append(pts, fmt.Sprintf("%.2f,%.2f", padL+step*float64(i)+step/2, y))
	}
	if len(pts) == 1 {
		pts = append(pts, pts[0])
	}
	if len(pts) > 0 {
		fmt.Fprintf(&sb, `<polyline class="depth" points="%s"/>`, strings.Join(pts, " "))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // built from numbers and constants only
}

func stepName(sp span) string {
	if sp.Step == time.Minute {
		return "minute"
	}
	return "10 minutes"
}

// compact writes an axis number: 950, 12k, 3.4M.
func compact(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%dk", n/1000)
	case n >= 1000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprint(n)
	}
}

// roundUp is the axis top at or above n whose four ticks are round: 4, 8, 10 or 20 times a power
// of ten (ticks of 1, 2, 2.5 or 5 times it).
func roundUp(n int64) int64 {
	for p := int64(1); p < 1e17; p *= 10 {
		for _, m := range []int64{4, 8, 10, 20} {
			if m*p >= n {
				return m * p
			}
		}
	}
	return n
}
