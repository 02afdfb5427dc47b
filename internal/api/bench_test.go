package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The API's own cost per request, over in-memory ports: what a Lambda
// invocation or a `longrun dev` request spends outside the store.

func BenchmarkStart(b *testing.B) {
	hs := setup(b)
	body := `{"input":{"seconds":3},"callbackUrl":"https://example.com/hook","name":"bench"}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/start-execution", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+hs.acme)
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	hs := setup(b)
	const id = "0193a6f0-0000-7000-8000-000000000001"
	hs.store.put(running(id, "acme"))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/executions/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+hs.acme)
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
