package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Dashboard is the `sql.dashboard` section: the web dashboard this node serves (off when Listen is
// empty) and how long the per-minute history it draws is kept (the history is written whether or
// not this node serves the dashboard, so any node's dashboard shows the whole cluster).
type Dashboard struct {
	// Listen is host:port; a host other than a loopback address requires Auth.
	Listen string
	// ReadOnly hides and refuses every action (pause, resume, flush, move, retry, delete).
	ReadOnly bool
	Auth     DashboardAuth
	// HistoryRetention is how long the per-minute counts are kept.
	HistoryRetention time.Duration
}

// DashboardAuth lets a request in by HTTP basic auth (User and a bcrypt PasswordHash) or by a
// bearer token (Token). Either, both or (on loopback only) neither may be set.
type DashboardAuth struct {
	User         string
	PasswordHash string
	Token        string
}

// Enabled tells whether any authentication is configured.
func (a DashboardAuth) Enabled() bool { return a.PasswordHash != "" || a.Token != "" }

var dashboardKeys = []string{"listen", "read_only", "auth", "history_retention"}
var dashboardAuthKeys = []string{"user", "password_hash", "token"}

// minTokenLength keeps a bearer token out of guessing range.
const minTokenLength = 16

// DefaultHistoryRetention is how long the dashboard's per-minute counts are kept by default.
const DefaultHistoryRetention = 7 * 24 * time.Hour

func parseDashboard(raw map[string]any) (Dashboard, error) {
	o := newOptions("sql.dashboard", raw)
	d := Dashboard{}
	d.Listen = o.String("listen", "")
	d.ReadOnly = o.Bool("read_only", false)
	d.HistoryRetention = o.Duration("history_retention", DefaultHistoryRetention, time.Hour, 10*365*24*time.Hour)
	auth := o.Map("auth")
	if err := o.Err(dashboardKeys); err != nil {
		return d, err
	}
	a := newOptions("sql.dashboard.auth", auth)
	d.Auth.User = a.String("user", "")
	d.Auth.PasswordHash = a.String("password_hash", "")
	d.Auth.Token = a.String("token", "")
	if err := a.Err(dashboardAuthKeys); err != nil {
		return d, err
	}
	switch {
	case d.Auth.User != "" && d.Auth.PasswordHash == "":
		return d, fmt.Errorf(`sql.dashboard.auth: option "password_hash" is required with "user" (a bcrypt hash: htpasswd -nbB USER PASSWORD prints one after the colon)`)
	case d.Auth.User == "" && d.Auth.PasswordHash != "":
		return d, fmt.Errorf(`sql.dashboard.auth: option "user" is required with "password_hash"`)
	case strings.Contains(d.Auth.User, ":"):
		return d, fmt.Errorf(`sql.dashboard.auth: option "user": may not contain ':' (basic auth separates user and password by it)`)
	}
	if d.Auth.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(d.Auth.PasswordHash)); err != nil {
			return d, fmt.Errorf(`sql.dashboard.auth: option "password_hash": not a bcrypt hash (%v). RoadRunner expands "$" in .rr.yaml values, `+
				`which breaks a hash written inline: put it in an environment variable and write password_hash: ${DASHBOARD_PASSWORD_HASH}`, err)
		}
	}
	if d.Auth.Token != "" && len(d.Auth.Token) < minTokenLength {
		return d, fmt.Errorf(`sql.dashboard.auth: option "token": use at least %d characters (got %d), for example the output of: openssl rand -hex 32`,
			minTokenLength, len(d.Auth.Token))
	}
	if d.Listen == "" {
		return d, nil
	}
	host, port, err := net.SplitHostPort(d.Listen)
	if err != nil || port == "" {
		return d, fmt.Errorf(`sql.dashboard: option "listen": must be host:port such as 127.0.0.1:8089, got %q`, d.Listen)
	}
	if !loopback(host) && !d.Auth.Enabled() {
		return d, fmt.Errorf(`sql.dashboard: option "listen": %q is not a loopback address, and the dashboard can pause pipelines and delete jobs: `+
			`set sql.dashboard.auth (user and password_hash, or token), or listen on 127.0.0.1`, d.Listen)
	}
	return d, nil
}

// loopback tells whether a listen host reaches this machine alone. An empty host or a name other
// than localhost may be any interface.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
