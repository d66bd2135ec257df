// The charts of results.md, drawn with gonum/plot (the reason the bench is a module of its own).

package main

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// chart draws rates.png: each target's Push, PushBatch and drain rates.
func chart(rs []result, file string) error {
	var names []string
	for _, r := range rs {
		names = append(names, r.target)
	}
	series := map[string][]float64{}
	for _, r := range rs {
		series["Push"] = append(series["Push"], r.pushPerSec)
		series["PushBatch"] = append(series["PushBatch"], r.batchPerSec)
		series["drain"] = append(series["drain"], r.drainPerSec)
	}
	return bars("jobs per second (higher is better)", names, []string{"Push", "PushBatch", "drain"}, series, file)
}

// backlogChart draws backlog.png: each target's drain rate at each backlog size.
func backlogChart(bs []backlogResult, sizes []int, file string) error {
	var names, labels []string
	for _, br := range bs {
		names = append(names, br.target)
	}
	series := map[string][]float64{}
	for i, n := range sizes {
		label := count(n) + " queued"
		labels = append(labels, label)
		for _, br := range bs {
			series[label] = append(series[label], br.rates[i])
		}
	}
	return bars("drain jobs per second against the backlog", names, labels, series, file)
}

// bars draws grouped bars: one group per name, one bar per label.
func bars(title string, names, labels []string, series map[string][]float64, file string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "jobs/s"
	w := vg.Points(14)
	colors := []color.RGBA{{70, 130, 180, 255}, {60, 179, 113, 255}, {205, 92, 92, 255}, {218, 165, 32, 255}}
	for i, label := range labels {
		b, err := plotter.NewBarChart(plotter.Values(series[label]), w)
		if err != nil {
			return err
		}
		b.Offset = w * vg.Length(float64(i)-float64(len(labels)-1)/2)
		b.LineStyle.Width = 0
		b.Color = colors[i%len(colors)]
		p.Add(b)
		p.Legend.Add(label, b)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	return p.Save(vg.Length(max(8, len(names)*3/2))*vg.Inch, 4*vg.Inch, file)
}
