// Package client is the Go client of the longrun HTTP API (v1): start an
// execution, describe it, wait for it to end, list, stop and redeliver. The
// `longrun` CLI's start, describe, wait and stop commands are built on it, and it
// works the same against `longrun dev` and a deployed API Gateway URL.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Execution is an execution as the API returns it.
type Execution struct {
	ExecutionARN string          `json:"executionArn"`
	ExecutionID  string          `json:"executionId"`
	Name         string          `json:"name,omitempty"`
	Job          string          `json:"job,omitempty"` // the kind of job it runs
	Status       string          `json:"status"`
	State        string          `json:"state,omitempty"` // RUNNING: its state machine's state, where the server can tell (longrun dev)
	Input        json.RawMessage `json:"input"`
	Output       json.RawMessage `json:"output,omitempty"`
	Error        string          `json:"error,omitempty"`
	Cause        string          `json:"cause,omitempty"`
	Progress     *Progress       `json:"progress,omitempty"`
	CallbackURL  string          `json:"callbackUrl,omitempty"`
	StartDate    time.Time       `json:"startDate"`
	StopDate     *time.Time      `json:"stopDate,omitempty"`
	Webhook      *Webhook        `json:"webhook,omitempty"`
}

// Terminal reports whether the execution has ended.
func (e *Execution) Terminal() bool { return e.Status != "" && e.Status != "RUNNING" }

// Progress is the job's latest progress report.
type Progress struct {
	Percent   float64   `json:"percent"`
	Message   string    `json:"message,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Webhook is the delivery record of the execution's final webhook.
type Webhook struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	State       string     `json:"state"`
	Attempts    []Attempt  `json:"attempts"`
	NextAttempt *time.Time `json:"nextAttempt,omitempty"`
}

// Attempt is one delivery attempt.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"` // 0 when no response arrived
	LatencyMs  int64     `json:"latencyMs"`
	Error      string    `json:"error,omitempty"`
}

// StartRequest is the body of POST /start-execution.
type StartRequest struct {
	Input json.RawMessage `json:"input"`
	// Job is the kind of job to run; empty runs the deployment's default
	// (the kind registered first).
	Job         string `json:"job,omitempty"`
	CallbackURL string `json:"callbackUrl,omitempty"`
	Name        string `json:"name,omitempty"`
}

// Page is one page of GET /executions.
type Page struct {
	Executions []Summary `json:"executions"`
	NextToken  string    `json:"nextToken,omitempty"`
}

// Summary is an execution as GET /executions lists it; Describe has the rest.
type Summary struct {
	ExecutionARN string     `json:"executionArn"`
	ExecutionID  string     `json:"executionId"`
	Name         string     `json:"name,omitempty"`
	Job          string     `json:"job,omitempty"`
	Status       string     `json:"status"`
	StartDate    time.Time  `json:"startDate"`
	StopDate     *time.Time `json:"stopDate,omitempty"`
}

// Problem is an RFC 9457 problem the API answered with.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Errors are the fields of a start's input that break its job kind's
	// input schema, each with why.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one rule an input breaks: Pointer is the JSON pointer of the
// field in the request body ("/input/email"), Detail the rule.
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// Client talks to one longrun API with one API key.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:3000
	APIKey  string
	HTTP    *http.Client
}

// New returns a client for baseURL authenticating with apiKey.
func New(baseURL, apiKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, HTTP: &http.Client{Timeout: 35 * time.Second}}
}

// Start starts an execution. idempotencyKey may be empty.
func (c *Client) Start(ctx context.Context, req StartRequest, idempotencyKey string) (*Execution, error) {
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	var out Execution
	if err := c.do(ctx, http.MethodPost, "/start-execution", h, req, &out); err != nil {
		return nil, fmt.Errorf("start execution: %w", err)
	}
	return &out, nil
}

// Describe returns the execution with id (an execution id or ARN).
func (c *Client) Describe(ctx context.Context, id string) (*Execution, error) {
	var out Execution
	if err := c.do(ctx, http.MethodPost, "/describe-execution", nil, idBody(id), &out); err != nil {
		return nil, fmt.Errorf("describe execution %s: %w", id, err)
	}
	return &out, nil
}

// List returns a page of the tenant's executions, newest first.
func (c *Client) List(ctx context.Context, status string, limit int, nextToken string) (*Page, error) {
	return c.ListExecutions(ctx, ListQuery{Status: status, Limit: limit, NextToken: nextToken})
}

// ListQuery selects executions for ListExecutions; zero fields select all.
type ListQuery struct {
	Status    string // RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED
	Job       string // a job kind
	Limit     int    // page size, 1 to 100; 0 for the API's default
	NextToken string // from the previous page
}

// ListExecutions returns a page of the tenant's executions that match q,
// newest first.
func (c *Client) ListExecutions(ctx context.Context, q ListQuery) (*Page, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Job != "" {
		v.Set("job", q.Job)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.NextToken != "" {
		v.Set("nextToken", q.NextToken)
	}
	path := "/executions"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out Page
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list executions: %w", err)
	}
	return &out, nil
}

// Stop stops a running execution; it ends ABORTED.
func (c *Client) Stop(ctx context.Context, id, errName, cause string) (*Execution, error) {
	body := idBody(id)
	if errName != "" {
		body["error"] = errName
	}
	if cause != "" {
		body["cause"] = cause
	}
	var out Execution
	if err := c.do(ctx, http.MethodPost, "/stop-execution", nil, body, &out); err != nil {
		return nil, fmt.Errorf("stop execution %s: %w", id, err)
	}
	return &out, nil
}

// Redeliver sends the execution's final webhook again.
func (c *Client) Redeliver(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodPost, "/executions/"+url.PathEscape(id)+"/redeliver", nil, nil, nil); err != nil {
		return fmt.Errorf("redeliver execution %s: %w", id, err)
	}
	return nil
}

// Wait polls until the execution ends, calling onUpdate (if not nil) whenever
// its status or progress changes, and returns the final record. Between polls
// it waits what the server's Retry-After asks (the API sends it with a
// RUNNING execution), or interval when the server sends none. A 429 or 503
// answer is not the end of the wait: it is retried after its Retry-After.
func (c *Client) Wait(ctx context.Context, id string, interval time.Duration, onUpdate func(*Execution)) (*Execution, error) {
	var last string
	for {
		var e Execution
		h, err := c.doHeader(ctx, http.MethodPost, "/describe-execution", nil, idBody(id), &e)
		delay := interval
		if ra, ok := retryAfter(h); ok {
			delay = ra
		}
		var p *Problem
		switch {
		case errors.As(err, &p) && (p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable):
			// Busy, not gone: wait as asked and ask again.
		case err != nil:
			return nil, fmt.Errorf("describe execution %s: %w", id, err)
		default:
			if onUpdate != nil {
				key := e.Status
				if e.Progress != nil {
					key += fmt.Sprintf("|%v|%s", e.Progress.Percent, e.Progress.Message)
				}
				if key != last {
					onUpdate(&e)
					last = key
				}
			}
			if e.Terminal() {
				return &e, nil
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for execution %s: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// maxRetryAfter caps how long one Retry-After may make Wait pause.
const maxRetryAfter = 5 * time.Minute

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return min(max(d, 0), maxRetryAfter), true
}

func idBody(id string) map[string]string {
	if strings.HasPrefix(id, "arn:") {
		return map[string]string{"executionArn": id}
	}
	return map[string]string{"executionId": id}
}

// maxResponseBytes caps what the client reads of one response: an execution
// record is bounded by the 256 KiB input and output limits.
const maxResponseBytes = 4 << 20

func (c *Client) do(ctx context.Context, method, path string, h http.Header, in, out any) error {
	_, err := c.doHeader(ctx, method, path, h, in, out)
	return err
}

// doHeader is do, also returning the answer's headers (nil when none came).
func (c *Client) doHeader(ctx context.Context, method, path string, h http.Header, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.Header, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if err := json.Unmarshal(data, p); err != nil || p.Status == 0 {
			p.Status = resp.StatusCode
		}
		return resp.Header, p
	}
	if out == nil || len(data) == 0 {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
	}
	return resp.Header, nil
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}
