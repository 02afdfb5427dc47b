package asl

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkStepPassTask steps a Pass and a Task state the way the engine
// does: Enter the Pass, Enter the Task, then TaskSucceeded.
func BenchmarkStepPassTask(b *testing.B) {
	m, err := Parse([]byte(`{"StartAt":"P","States":{
	  "P":{"Type":"Pass","Parameters":{"id.$":"$.id","items.$":"$.items","when.$":"$$.State.EnteredTime"},"ResultPath":"$.prepared","Next":"T"},
	  "T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{"id.$":"$.prepared.id","n.$":"States.ArrayLength($.items)"}},
	       "ResultSelector":{"out.$":"$.Payload"},"ResultPath":"$.result","Retry":[{"ErrorEquals":["States.ALL"]}],"End":true}}}`))
	if err != nil {
		b.Fatal(err)
	}
	in := json.RawMessage(`{"id":"job-1","items":[1,2,3,4,5,6,7,8,9,10],"meta":{"owner":"someone","tags":["a","b"]}}`)
	result := json.RawMessage(`{"StatusCode":200,"Payload":{"ok":true,"count":10}}`)
	c := &Context{Execution: ExecutionContext{ID: "arn:x", Name: "x", StartTime: time.Unix(0, 0)}}
	now := time.Unix(1, 0)
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.Enter("P", in, c, now)
		if err != nil || s.Kind != StepNext {
			b.Fatal(s, err)
		}
		t, err := m.Enter("T", s.Output, c, now)
		if err != nil || t.Kind != StepTask {
			b.Fatal(t, err)
		}
		if d := m.TaskSucceeded("T", s.Output, result, c); d.Kind != StepSucceed {
			b.Fatal(d)
		}
	}
}
