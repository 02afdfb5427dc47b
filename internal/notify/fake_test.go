package notify

import (
	"context"
	"errors"
	"sync"

	"github.com/longrun/longrun"
)

// fakeStore is the smallest ExecutionStore and TenantStore notify needs, with
// FinishExecution conditional as the port requires. failFinish and failSave
// make the next calls fail, as a throttled table would.
type fakeStore struct {
	mu         sync.Mutex
	executions map[string]longrun.Execution
	tenants    map[string]longrun.Tenant
	failFinish int
	failSave   int
	saves      int
}

var (
	_ longrun.ExecutionStore = (*fakeStore)(nil)
	_ longrun.TenantStore    = (*fakeStore)(nil)
)

var errThrottled = errors.New("fake: throttled")

func newFakeStore() *fakeStore {
	return &fakeStore{executions: map[string]longrun.Execution{}, tenants: map[string]longrun.Tenant{}}
}

func (s *fakeStore) put(e longrun.Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.executions[e.ID] = e
}

func (s *fakeStore) get(id string) longrun.Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.executions[id]
}

func (s *fakeStore) CreateExecution(context.Context, *longrun.Execution) (*longrun.Execution, bool, error) {
	return nil, false, errors.New("fake: not used by notify")
}

func (s *fakeStore) DeleteExecution(context.Context, string) error {
	return errors.New("fake: not used by notify")
}

func (s *fakeStore) GetExecution(_ context.Context, tenant, id string) (*longrun.Execution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.executions[id]
	if !ok || (tenant != "" && tenant != e.Tenant) {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	return &e, nil
}

func (s *fakeStore) ListExecutions(context.Context, string, longrun.ListQuery) (*longrun.ExecutionPage, error) {
	return nil, errors.New("fake: not used by notify")
}

func (s *fakeStore) FinishExecution(_ context.Context, id string, o longrun.Outcome) (*longrun.Execution, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failFinish > 0 {
		s.failFinish--
		return nil, false, errThrottled
	}
	e, ok := s.executions[id]
	if !ok {
		return nil, false, longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	if e.Status != longrun.StatusRunning {
		return &e, false, nil
	}
	e.Status, e.Output, e.Error, e.Cause, e.StopDate = o.Status, o.Output, o.Error, o.Cause, o.StopDate
	e.Progress = nil
	s.executions[id] = e
	return &e, true, nil
}

func (s *fakeStore) SetProgress(context.Context, string, longrun.Progress) error {
	return errors.New("fake: not used by notify")
}

func (s *fakeStore) SaveDelivery(_ context.Context, id string, d longrun.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave > 0 {
		s.failSave--
		return errThrottled
	}
	e, ok := s.executions[id]
	if !ok {
		return longrun.Errorf(longrun.ENOTFOUND, "execution %s not found", id)
	}
	d.Attempts = append([]longrun.Attempt(nil), d.Attempts...)
	e.Webhook = &d
	s.executions[id] = e
	s.saves++
	return nil
}

func (s *fakeStore) PutTenant(_ context.Context, t *longrun.Tenant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tenants[t.ID] = *t
	return nil
}

func (s *fakeStore) GetTenant(_ context.Context, id string) (*longrun.Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return nil, longrun.Errorf(longrun.ENOTFOUND, "tenant %s not found", id)
	}
	return &t, nil
}

func (s *fakeStore) PutAPIKey(context.Context, string, string) error {
	return errors.New("fake: not used by notify")
}

func (s *fakeStore) DeleteAPIKey(context.Context, string) error {
	return errors.New("fake: not used by notify")
}

func (s *fakeStore) TenantForKey(context.Context, string) (string, error) {
	return "", errors.New("fake: not used by notify")
}
