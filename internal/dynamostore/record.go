package dynamostore

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/longrun/longrun"
)

// Key prefixes and sort keys of the item kinds (see the package doc).
const (
	prefixExec   = "EXEC#"
	prefixIdem   = "IDEM#"
	prefixTenant = "TENANT#"
	prefixKey    = "KEY#"
	skExec       = "EXEC"
	skIdem       = "IDEM"
	skTenant     = "TENANT"
	skKey        = "KEY"
)

// compressAbove is the size from which input and output are stored gzipped:
// two 256 KiB payloads would not fit an item's 400 KB otherwise, and small
// ones stay readable in the console.
const compressAbove = 16 * 1024

func execPK(id string) string           { return prefixExec + id }
func tenantGSI1PK(tenant string) string { return prefixTenant + tenant }
func idemPK(tenant, key string) string  { return prefixIdem + tenant + "#" + key }

// execItem is an execution as stored. Field names are the attribute names.
type execItem struct {
	PK             string        `dynamodbav:"pk"`
	SK             string        `dynamodbav:"sk"`
	GSI1PK         string        `dynamodbav:"gsi1pk"`
	GSI1SK         string        `dynamodbav:"gsi1sk"`
	ID             string        `dynamodbav:"id"`
	ARN            string        `dynamodbav:"arn,omitempty"`
	Tenant         string        `dynamodbav:"tenant"`
	Name           string        `dynamodbav:"name,omitempty"`
	Status         string        `dynamodbav:"status"`
	Input          string        `dynamodbav:"input,omitempty"`
	InputZ         []byte        `dynamodbav:"inputZ,omitempty"`
	Output         string        `dynamodbav:"output,omitempty"`
	OutputZ        []byte        `dynamodbav:"outputZ,omitempty"`
	Error          string        `dynamodbav:"error,omitempty"`
	Cause          string        `dynamodbav:"cause,omitempty"`
	Progress       *progressItem `dynamodbav:"progress,omitempty"`
	CallbackURL    string        `dynamodbav:"callbackUrl,omitempty"`
	StartDate      int64         `dynamodbav:"startDate"`
	StopDate       int64         `dynamodbav:"stopDate,omitempty"`
	Webhook        *deliveryItem `dynamodbav:"webhook,omitempty"`
	IdempotencyKey string        `dynamodbav:"idempotencyKey,omitempty"`
	RequestHash    string        `dynamodbav:"requestHash,omitempty"`
	Job            string        `dynamodbav:"job,omitempty"`
	// PendPK and PendSK are the start-pending marker (pending.go).
	PendPK string `dynamodbav:"pendpk,omitempty"`
	PendSK string `dynamodbav:"pendsk,omitempty"`
}

type progressItem struct {
	Percent   float64 `dynamodbav:"percent"`
	Message   string  `dynamodbav:"message,omitempty"`
	UpdatedAt int64   `dynamodbav:"updatedAt"`
}

type deliveryItem struct {
	EventID     string        `dynamodbav:"eventId"`
	Type        string        `dynamodbav:"type"`
	State       string        `dynamodbav:"state"`
	Attempts    []attemptItem `dynamodbav:"attempts,omitempty"`
	NextAttempt int64         `dynamodbav:"nextAttempt,omitempty"`
	Round       int           `dynamodbav:"round,omitempty"`
	RoundTries  int           `dynamodbav:"roundAttempts,omitempty"`
}

type attemptItem struct {
	At         int64  `dynamodbav:"at"`
	StatusCode int    `dynamodbav:"statusCode,omitempty"`
	LatencyMS  int64  `dynamodbav:"latencyMs"`
	Error      string `dynamodbav:"error,omitempty"`
}

type idemItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Tenant      string `dynamodbav:"tenant"`
	ExecutionID string `dynamodbav:"executionId"`
	RequestHash string `dynamodbav:"requestHash"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"` // unix ms: the key is valid while start < expiresAt
}

type tenantItem struct {
	PK      string       `dynamodbav:"pk"`
	SK      string       `dynamodbav:"sk"`
	ID      string       `dynamodbav:"id"`
	Secrets []secretItem `dynamodbav:"secrets"`
}

type secretItem struct {
	Value     string `dynamodbav:"value"`
	CreatedAt int64  `dynamodbav:"createdAt"`
	ExpiresAt int64  `dynamodbav:"expiresAt,omitempty"`
}

type keyItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Tenant string `dynamodbav:"tenant"`
}

// millis is t as unix milliseconds, 0 for the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis is the inverse of millis, in UTC.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// packJSON returns raw as a plain string, or gzipped when it is large.
func packJSON(raw json.RawMessage) (plain string, zipped []byte) {
	if len(raw) < compressAbove {
		return string(raw), nil
	}
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(raw) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	return "", b.Bytes()
}

func unpackJSON(plain string, zipped []byte) (json.RawMessage, error) {
	if len(zipped) == 0 {
		if plain == "" {
			return nil, nil
		}
		return json.RawMessage(plain), nil
	}
	r, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return raw, nil
}

func toExecItem(e *longrun.Execution) execItem {
	it := execItem{
		PK:             execPK(e.ID),
		SK:             skExec,
		GSI1PK:         tenantGSI1PK(e.Tenant),
		GSI1SK:         execPK(e.ID),
		ID:             e.ID,
		ARN:            e.ARN,
		Tenant:         e.Tenant,
		Name:           e.Name,
		Status:         string(e.Status),
		Error:          e.Error,
		Cause:          e.Cause,
		Progress:       toProgressItem(e.Progress),
		CallbackURL:    e.CallbackURL,
		StartDate:      millis(e.StartDate),
		StopDate:       millis(e.StopDate),
		Webhook:        toDeliveryItem(e.Webhook),
		IdempotencyKey: e.IdempotencyKey,
		RequestHash:    e.RequestHash,
		Job:            e.Job,
	}
	if e.Status == longrun.StatusRunning {
		// Marked until StartExecution is known to have run (pending.go).
		it.PendPK, it.PendSK = pendingPK(e.ID), pendingSK(e.StartDate, e.ID)
	}
	it.Input, it.InputZ = packJSON(e.Input)
	it.Output, it.OutputZ = packJSON(e.Output)
	return it
}

func (it *execItem) execution() (*longrun.Execution, error) {
	e := &longrun.Execution{
		ID:             it.ID,
		ARN:            it.ARN,
		Tenant:         it.Tenant,
		Name:           it.Name,
		Status:         longrun.Status(it.Status),
		Error:          it.Error,
		Cause:          it.Cause,
		CallbackURL:    it.CallbackURL,
		StartDate:      fromMillis(it.StartDate),
		StopDate:       fromMillis(it.StopDate),
		IdempotencyKey: it.IdempotencyKey,
		RequestHash:    it.RequestHash,
		Job:            it.Job,
	}
	var err error
	if e.Input, err = unpackJSON(it.Input, it.InputZ); err != nil {
		return nil, fmt.Errorf("input of execution %s: %w", it.ID, err)
	}
	if e.Output, err = unpackJSON(it.Output, it.OutputZ); err != nil {
		return nil, fmt.Errorf("output of execution %s: %w", it.ID, err)
	}
	if p := it.Progress; p != nil {
		e.Progress = &longrun.Progress{Percent: p.Percent, Message: p.Message, UpdatedAt: fromMillis(p.UpdatedAt)}
	}
	if d := it.Webhook; d != nil {
		w := &longrun.Delivery{
			EventID:       d.EventID,
			Type:          longrun.EventType(d.Type),
			State:         longrun.DeliveryState(d.State),
			NextAttempt:   fromMillis(d.NextAttempt),
			Round:         d.Round,
			RoundAttempts: d.RoundTries,
		}
		for _, a := range d.Attempts {
			w.Attempts = append(w.Attempts, longrun.Attempt{
				At:         fromMillis(a.At),
				StatusCode: a.StatusCode,
				Latency:    time.Duration(a.LatencyMS) * time.Millisecond,
				Error:      a.Error,
			})
		}
		e.Webhook = w
	}
	return e, nil
}

func toProgressItem(p *longrun.Progress) *progressItem {
	if p == nil {
		return nil
	}
	return &progressItem{Percent: p.Percent, Message: p.Message, UpdatedAt: millis(p.UpdatedAt)}
}

func toDeliveryItem(d *longrun.Delivery) *deliveryItem {
	if d == nil {
		return nil
	}
	it := &deliveryItem{EventID: d.EventID, Type: string(d.Type), State: string(d.State), NextAttempt: millis(d.NextAttempt), Round: d.Round, RoundTries: d.RoundAttempts}
	attempts := d.Attempts
	if len(attempts) > longrun.MaxAttemptsKept {
		attempts = attempts[len(attempts)-longrun.MaxAttemptsKept:]
	}
	for _, a := range attempts {
		it.Attempts = append(it.Attempts, attemptItem{
			At: millis(a.At), StatusCode: a.StatusCode, LatencyMS: a.Latency.Milliseconds(), Error: a.Error,
		})
	}
	return it
}
