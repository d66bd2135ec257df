// Package dashboard is the web dashboard the plugin serves when `sql.dashboard.listen` is set:
// pages rendered by html/template from embedded templates, a little hand-written JavaScript that
// refreshes them by polling, SVG charts drawn here, and the same numbers as JSON under /api/.
//
// It reads through the store's cheap calls only (the kept counts, the per-minute history, index
// pages of groups and failed jobs): no page reads the backlog. Its actions go through the same code
// as the `sql` RPC service (flush, move, retry, delete) and the jobs plugin (pause, resume). No SQL
// here.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rr-sql/sqljobs/config"
	"github.com/rr-sql/sqljobs/rpc"
	"github.com/rr-sql/sqljobs/store"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Pipeline is one sql pipeline of the cluster as the dashboard shows it: one of this node, or
// (Elsewhere) one another node runs on a connection this node uses.
type Pipeline struct {
	Name string
	// Queue is "" for a pipeline of another node that was not declared: its queue is in that
	// node's configuration only, so its counts are unknown here (its history is not).
	Queue      string
	Connection string
	Consuming  bool
	GroupBy    string
	// Elsewhere: the pipeline does not run on this node but on another node sharing the database.
	// Declared tells whether jobs.Declare created it (then Consuming is the cluster's state of it).
	Elsewhere, Declared bool
	// Options are the pipeline's options as shown (name, value), in a fixed order.
	Options [][2]string
	Store   store.Store
}

// Connection is one database connection of this node.
type Connection struct {
	Name    string
	Dialect string
	// Node is this node's id on the connection.
	Node  string
	Store store.Store
}

// Source is what the plugin shows the dashboard.
type Source interface {
	// Pipelines lists the live sql pipelines of this node in name order.
	Pipelines() []Pipeline
	Pipeline(name string) (Pipeline, bool)
	// Pause and Resume go through RoadRunner's jobs plugin, as jobs.Pause and jobs.Resume do.
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	// Connections lists the connections the live pipelines use, in name order.
	Connections() []Connection
}

// Server is the dashboard's HTTP server.
type Server struct {
	cfg   config.Dashboard
	src   Source
	svc   *rpc.Service
	log   *zap.Logger
	csrf  string
	pages map[string]*template.Template
	// passed remembers the basic-auth credentials that matched the hash (by their SHA-256): a page
	// polled every few seconds must not cost a bcrypt comparison each time.
	passed sync.Map

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// New prepares the dashboard; Start listens.
func New(cfg config.Dashboard, src Source, svc *rpc.Service, log *zap.Logger) (*Server, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dashboard: make the CSRF secret: %w", err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("sql dashboard form"))
	s := &Server{cfg: cfg, src: src, svc: svc, log: log, csrf: hex.EncodeToString(mac.Sum(nil))}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	return s, nil
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

// Start listens on the configured address and serves until Stop. The error is the listener's.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sql.dashboard.listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dashboard stopped serving", zap.Error(err))
		}
	}()
	s.log.Info("dashboard listening", zap.String("url", "http://"+ln.Addr().String()+"/"), zap.Bool("read_only", s.cfg.ReadOnly))
	return nil
}

// Addr is the address listened on (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Stop ends the server within ctx.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Handler is every route of the dashboard behind its authentication.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /pipelines/{name}", s.pipeline)
	mux.HandleFunc("POST /pipelines/{name}/{action}", s.pipelineAction)
	mux.HandleFunc("GET /failed", s.failed)
	mux.HandleFunc("POST /failed", s.failedAction)
	mux.HandleFunc("GET /jobs", s.jobs)
	mux.HandleFunc("GET /nodes", s.nodes)
	mux.HandleFunc("GET /api/overview", s.apiOverview)
	mux.HandleFunc("GET /api/pipelines/{name}", s.apiPipeline)
	mux.HandleFunc("GET /api/pipelines/{name}/history", s.apiHistory)
	mux.HandleFunc("GET /api/failed", s.apiFailed)
	mux.HandleFunc("GET /api/nodes", s.apiNodes)
	return s.secure(mux)
}

// secure sets the headers every answer carries and checks the credentials.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if !s.cfg.Auth.Enabled() && !loopbackHost(r.Host) {
			// Without auth the dashboard trusts whoever reaches loopback. A web page that re-points
			// its own host name at 127.0.0.1 (DNS rebinding) reaches it too, but under its name:
			// refuse any name but a loopback one.
			http.Error(w, "host "+strconv.Quote(r.Host)+" refused: without sql.dashboard.auth the dashboard answers only to a loopback address or localhost", http.StatusForbidden)
			return
		}
		if !s.authorized(r) {
			// Basic auth makes browsers ask for a password; a client that sent a token is told
			// about tokens.
			if s.cfg.Auth.PasswordHash != "" && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				h.Set("WWW-Authenticate", `Basic realm="rr sql dashboard", charset="UTF-8"`)
			} else {
				h.Set("WWW-Authenticate", `Bearer realm="rr sql dashboard"`)
			}
			http.Error(w, "authentication required (sql.dashboard.auth)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	a := s.cfg.Auth
	if !a.Enabled() {
		return true
	}
	header := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(header, "Bearer "); ok && a.Token != "" {
		return subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) == 1
	}
	user, pass, ok := r.BasicAuth()
	if !ok || a.PasswordHash == "" || subtle.ConstantTimeCompare([]byte(user), []byte(a.User)) != 1 {
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	if _, ok := s.passed.Load(key); ok {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(pass)) != nil {
		return false
	}
	s.passed.Store(key, struct{}{})
	return true
}

// checkForm refuses an action when the dashboard is read-only or the form's CSRF token is not
// this process's; it answers the request itself when it refuses.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.ReadOnly {
		http.Error(w, "the dashboard is read-only (sql.dashboard.read_only)", http.StatusForbidden)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return false
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) {
		http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
		return false
	}
	return true
}

// loopbackHost tells whether a request's Host names this machine's loopback.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// State is the pipeline's state as shown: consuming, paused, or elsewhere (another node's
// pipeline from its configuration, whose state only that node knows).
func (p Pipeline) State() string {
	switch {
	case p.Elsewhere && !p.Declared:
		return "elsewhere"
	case p.Consuming:
		return "consuming"
	default:
		return "paused"
	}
}
