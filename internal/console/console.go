// Package console owns the web console that `longrun dev` serves at /ui/: a
// list of executions and a page per execution with its state machine drawn
// as a graph, its history, progress and webhook attempts, and buttons to stop
// and redeliver. Every asset is embedded (no CDN, no build step). The page
// holds no data of its own: it calls the HTTP API from the browser with the
// API key as a Bearer header, so it sees exactly what that key's tenant may
// see. The one thing the API does not serve — an execution's history and the
// laid-out graph of its state machine — is served here under /ui/api/, behind
// the same authentication and the same tenant check. docs/console.md says why.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/longrun/longrun"
	"github.com/longrun/longrun/internal/asl"
)

//go:embed static
var static embed.FS

// Config is what the console needs.
type Config struct {
	// Authenticate resolves a request's Authorization header to a tenant,
	// as the API does (api.BearerAuth).
	Authenticate func(*http.Request) (tenant string, err error)
	// Executions finds the execution, and refuses another tenant's (ENOTFOUND).
	Executions longrun.ExecutionStore
	// History returns the orchestrator's history of an execution, by ARN.
	History func(ctx context.Context, arn string) ([]asl.HistoryEvent, error)
	// Definition is the main state machine's definition, after substitution.
	Definition json.RawMessage
	Logger     *slog.Logger // nil discards
}

type handler struct {
	cfg   Config
	log   *slog.Logger
	index []byte
}

// New returns the console as a handler for paths under /ui/.
func New(cfg Config) (http.Handler, error) {
	if cfg.Authenticate == nil || cfg.Executions == nil || cfg.History == nil {
		return nil, errors.New("console: Authenticate, Executions and History are required")
	}
	if _, err := Layout(cfg.Definition); err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.index, err = static.ReadFile("static/index.html"); err != nil {
		return nil, err
	}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	// The page is the same for every console URL: it reads the path itself.
	mux.HandleFunc("GET /ui/{$}", h.page)
	mux.HandleFunc("GET /ui/executions/{id}", h.page)
	files := http.StripPrefix("/ui/assets/", http.FileServerFS(assets))
	mux.HandleFunc("GET /ui/assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache") // revalidated: a new binary's assets show at once
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /ui/api/executions/{id}/trace", h.trace)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no console page at "+r.URL.Path+"; the console starts at /ui/")
	})
	return secure(mux), nil
}

// secure sets the headers every console answer carries: a strict content
// security policy (only our own scripts and styles, fetches only to this
// origin), no framing (clickjacking), no referrer (an execution id in a URL
// stays here), no MIME sniffing.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(h.index)
}

// trace is an execution's history and its state machine's graph with the
// path lit: what the execution page draws. Another tenant's execution is a
// 404, exactly like an unknown one.
func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	tenant, err := h.cfg.Authenticate(r)
	if err == nil && tenant == "" {
		err = longrun.Errorf(longrun.EUNAUTHORIZED, "no tenant for this request")
	}
	if err != nil {
		if longrun.IsCode(err, longrun.EUNAUTHORIZED) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="longrun"`)
			problem(w, http.StatusUnauthorized, longrun.ErrorMessage(err))
			return
		}
		h.fail(w, r, "authenticate", err)
		return
	}
	id := r.PathValue("id")
	e, err := h.cfg.Executions.GetExecution(r.Context(), tenant, id)
	if longrun.IsCode(err, longrun.ENOTFOUND) {
		problem(w, http.StatusNotFound, "execution "+id+" does not exist")
		return
	}
	if err != nil {
		h.fail(w, r, "get execution", err)
		return
	}
	history, err := h.cfg.History(r.Context(), e.ARN)
	if err != nil && !longrun.IsCode(err, longrun.ENOTFOUND) { // not started yet: no events
		h.fail(w, r, "history", err)
		return
	}
	g, err := Layout(h.cfg.Definition)
	if err != nil {
		h.fail(w, r, "layout", err)
		return
	}
	g.Mark(history, string(e.Status))
	if history == nil {
		history = []asl.HistoryEvent{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Status  string             `json:"status"`
		Graph   *Graph             `json:"graph"`
		History []asl.HistoryEvent `json:"history"`
	}{string(e.Status), g, history})
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.ErrorContext(r.Context(), "console: "+what, "err", err, "path", r.URL.Path)
	problem(w, http.StatusInternalServerError, "internal error; the server's log has the details")
}

// problem answers as the API does, with application/problem+json.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": strings.TrimSpace(detail),
	})
}
