package api

import "net/http"

// Route is one method and path of the API, in Go 1.22 ServeMux form, which is
// also OpenAPI's path template form.
type Route struct {
	Method string
	Path   string
}

// route binds a Route to its handler.
type route struct {
	Route
	handler handlerFunc
}

// routes is the whole API. DESIGN.md § HTTP API is the contract;
// api/openapi.yaml and template.yaml are checked against Routes() by tests.
func (s *server) routes() []route {
	return []route{
		{Route{http.MethodPost, "/start-execution"}, s.handleStart},
		{Route{http.MethodPost, "/describe-execution"}, s.handleDescribePost},
		{Route{http.MethodGet, "/executions/{id}"}, s.handleDescribeGet},
		{Route{http.MethodGet, "/executions"}, s.handleList},
		{Route{http.MethodPost, "/stop-execution"}, s.handleStopPost},
		{Route{http.MethodDelete, "/executions/{id}"}, s.handleStopDelete},
		{Route{http.MethodPost, "/executions/{id}/redeliver"}, s.handleRedeliver},
	}
}

// Routes returns the API's route table: what API Gateway must route to the
// API and what api/openapi.yaml must document.
func Routes() []Route {
	var s *server // method values of a nil *server are never called here
	rs := s.routes()
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = r.Route
	}
	return out
}
