package api

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	longrun "github.com/longrun/longrun"
)

// executionStore is an in-memory ExecutionStore with the contract's
// idempotency and tenant rules, and injectable failures.
type executionStore struct {
	mu    sync.Mutex
	execs map[string]longrun.Execution
	keys  map[string]string // tenant + "\x00" + idempotency key → execution id
	// getErr, when set, is returned by GetExecution.
	getErr error
	// panicOnList makes ListExecutions panic, to test recovery.
	panicOnList bool
}

func newExecutionStore() *executionStore {
	return &executionStore{execs: map[string]longrun.Execution{}, keys: map[string]string{}}
}

func (s *executionStore) CreateExecution(_ context.Context, e *longrun.Execution) (*longrun.Execution, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.IdempotencyKey != "" {
		if id, ok := s.keys[e.Tenant+"\x00"+e.IdempotencyKey]; ok {
			prev := s.execs[id]
			if e.StartDate.Sub(prev.StartDate) < longrun.IdempotencyWindow {
				if prev.RequestHash != e.RequestHash {
					return nil, false, longrun.Errorf(longrun.ECONFLICT, "key reused")
				}
				return &prev, true, nil
			}
		}
		s.keys[e.Tenant+"\x00"+e.IdempotencyKey] = e.ID
	}
	if _, ok := s.execs[e.ID]; ok {
		return nil, false, longrun.Errorf(longrun.EDUPLICATE, "exists")
	}
	s.execs[e.ID] = *e
	stored := *e
	return &stored, false, nil
}

func (s *executionStore) DeleteExecution(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.execs[id]
	delete(s.keys, e.Tenant+"\x00"+e.IdempotencyKey)
	delete(s.execs, id)
	return nil
}

func (s *executionStore) GetExecution(_ context.Context, tenant, id string) (*longrun.Execution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	e, ok := s.execs[id]
	if !ok || (tenant != "" && e.Tenant != tenant) {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "no execution %s", id)
	}
	return &e, nil
}

func (s *executionStore) ListExecutions(_ context.Context, tenant string, q longrun.ListQuery) (*longrun.ExecutionPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panicOnList {
		panic("list exploded")
	}
	var all []longrun.Execution
	for _, e := range s.execs {
		if e.Tenant == tenant && (q.Status == "" || e.Status == q.Status) && (q.Job == "" || e.Job == q.Job) {
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b longrun.Execution) int { return strings.Compare(b.ID, a.ID) })
	start := 0
	if q.NextToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.NextToken, "page:"))
		if err != nil || !strings.HasPrefix(q.NextToken, "page:") {
			return nil, longrun.Errorf(longrun.EINVALID, "bad token")
		}
		start = n
	}
	end := min(start+q.Limit, len(all))
	page := &longrun.ExecutionPage{Executions: all[start:end]}
	if end < len(all) {
		page.NextToken = "page:" + strconv.Itoa(end)
	}
	return page, nil
}

func (s *executionStore) FinishExecution(_ context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[id]
	if !ok {
		return nil, false, longrun.Errorf(longrun.ENOTFOUND, "no execution %s", id)
	}
	if e.Status != longrun.StatusRunning {
		return &e, false, nil
	}
	e.Status, e.Output, e.Error, e.Cause, e.StopDate = o.Status, o.Output, o.Error, o.Cause, o.StopDate
	s.execs[id] = e
	return &e, true, nil
}

func (s *executionStore) SetProgress(_ context.Context, id string, p longrun.Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.execs[id]
	e.Progress = &p
	s.execs[id] = e
	return nil
}

func (s *executionStore) SaveDelivery(_ context.Context, id string, d longrun.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.execs[id]
	e.Webhook = &d
	s.execs[id] = e
	return nil
}

func (s *executionStore) put(e longrun.Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.execs[e.ID] = e
	if e.IdempotencyKey != "" {
		s.keys[e.Tenant+"\x00"+e.IdempotencyKey] = e.ID
	}
}

func (s *executionStore) execution(id string) (longrun.Execution, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[id]
	return e, ok
}

func (s *executionStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.execs)
}

// tenantStore maps key hashes to tenants.
type tenantStore struct{ keys map[string]string }

func (s *tenantStore) PutTenant(context.Context, *longrun.Tenant) error { return nil }
func (s *tenantStore) GetTenant(context.Context, string) (*longrun.Tenant, error) {
	return nil, longrun.Errorf(longrun.ENOTFOUND, "no tenant")
}
func (s *tenantStore) PutAPIKey(_ context.Context, hash, tenant string) error {
	s.keys[hash] = tenant
	return nil
}
func (s *tenantStore) DeleteAPIKey(context.Context, string) error {
	return errors.New("not used by the API")
}
func (s *tenantStore) TenantForKey(_ context.Context, hash string) (string, error) {
	if t, ok := s.keys[hash]; ok {
		return t, nil
	}
	return "", longrun.Errorf(longrun.ENOTFOUND, "no key")
}

// orchestrator records calls and fails on demand.
type orchestrator struct {
	mu           sync.Mutex
	starts       []longrun.StateInput
	stops        []stopCall
	redelivers   []string
	startErr     error
	stopErr      error
	redeliverErr error
	endedRounds  map[int]bool // Redeliver of these rounds gives ENOTRUNNING
	onStop       func()       // runs in StopExecution, as a racing Finalize would
}

type stopCall struct{ arn, errName, cause string }

const arnPrefix = "arn:aws:states:eu-west-1:123456789012:execution:longrun-Jobs:"

func (o *orchestrator) ExecutionARN(id string) string { return arnPrefix + id }

func (o *orchestrator) StartExecution(_ context.Context, in longrun.StateInput) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.startErr != nil {
		return o.startErr
	}
	o.starts = append(o.starts, in)
	return nil
}

func (o *orchestrator) StopExecution(_ context.Context, arn, errName, cause string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopErr != nil {
		return o.stopErr
	}
	o.stops = append(o.stops, stopCall{arn, errName, cause})
	if o.onStop != nil {
		o.onStop()
	}
	return nil
}

func (o *orchestrator) Redeliver(_ context.Context, id string, round int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.redeliverErr != nil {
		return o.redeliverErr
	}
	if o.endedRounds[round] {
		return longrun.Errorf(longrun.ENOTRUNNING, "round %d has ended", round)
	}
	o.redelivers = append(o.redelivers, longrun.DeliverName(id, round))
	return nil
}

func (o *orchestrator) setStartErr(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.startErr = err
}

func (o *orchestrator) started() []longrun.StateInput {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.starts)
}
