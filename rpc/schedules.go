package rpc

import (
	"context"
	"fmt"
	"time"
)

// ScheduleEntry is one schedule of sql.schedules as this node knows it.
type ScheduleEntry struct {
	Name, Cron, Timezone, Pipeline, Job, Missed string
	// NextTick is the next tick after now; LastTick the last tick pushed (zero: none yet, or the
	// pipeline is not on this node).
	NextTick, LastTick time.Time
}

// SchedulesRequest takes no arguments.
type SchedulesRequest struct{}

// Schedule is one schedule in sql.Schedules' answer.
type Schedule struct {
	Name     string `json:"name"`
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	Pipeline string `json:"pipeline"`
	Job      string `json:"job"`
	Missed   string `json:"missed"`
	// NextTick and LastTick are RFC 3339 times in UTC with milliseconds, "" when absent.
	NextTick string `json:"next_tick"`
	LastTick string `json:"last_tick"`
}

// SchedulesResponse lists the schedules by name.
type SchedulesResponse struct {
	Schedules []Schedule `json:"schedules"`
}

// Schedules lists the sql.schedules entries with their next tick and the last tick pushed (read
// from the database of the schedule's pipeline).
func (s *Service) Schedules(_ *SchedulesRequest, out *SchedulesResponse) error {
	out.Schedules = []Schedule{} // [] in JSON, never null
	if s.ScheduleList == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	list, err := s.ScheduleList(ctx)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	for _, e := range list {
		out.Schedules = append(out.Schedules, Schedule{Name: e.Name, Cron: e.Cron, Timezone: e.Timezone, Pipeline: e.Pipeline,
			Job: e.Job, Missed: e.Missed, NextTick: formatTime(e.NextTick), LastTick: formatTime(e.LastTick)})
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}
