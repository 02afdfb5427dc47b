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

// BenchmarkStepLongrun64K steps the shape of statemachine/longrun.asl.json's
// happy path (a Choice, a task with a token whose result goes beside the
// input, a task whose ResultPath is null and OutputPath picks the result)
// with 64 KiB in and 64 KiB out, the way the engine does.
func BenchmarkStepLongrun64K(b *testing.B) {
	m, err := Parse([]byte(`{"StartAt":"Kind","States":{
	  "Kind":{"Type":"Choice","Choices":[{"Variable":"$.job","IsPresent":false,"Next":"Done"}],"Default":"Work"},
	  "Work":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Parameters":{"QueueUrl":"q","MessageBody":{"taskToken.$":"$$.Task.Token","executionId.$":"$.executionId","input.$":"$.input","job.$":"$.job","limits.$":"$.limits"}},"ResultPath":"$.result","Next":"Finalize"},
	  "Finalize":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{"FunctionName":"f","Payload":{"action":"finalize","executionId.$":"$.executionId","output.$":"$.result"}},"ResultPath":null,"OutputPath":"$.result","End":true},
	  "Done":{"Type":"Succeed"}}}`))
	if err != nil {
		b.Fatal(err)
	}
	in := json.RawMessage(benchDoc(64 << 10))
	v, err := decodeJSON(in)
	if err != nil {
		b.Fatal(err)
	}
	in = encodeJSON(v) // as the first state's output: in encodeJSON's form
	var r map[string]any
	if err := json.Unmarshal(benchDoc(64<<10), &r); err != nil {
		b.Fatal(err)
	}
	result := encodeJSON(r["input"])
	c := &Context{Execution: ExecutionContext{ID: "arn:x", Name: "x", StartTime: time.Unix(0, 0), Input: in}, Task: TaskContext{Token: "token"}}
	now := time.Unix(1, 0)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		k, err := m.Enter("Kind", in, c, now)
		if err != nil || k.Kind != StepNext {
			b.Fatal(k, err)
		}
		if t, err := m.Enter("Work", k.Output, c, now); err != nil || t.Kind != StepTask {
			b.Fatal(t, err)
		}
		w := m.TaskSucceeded("Work", k.Output, result, c)
		if w.Kind != StepNext {
			b.Fatal(w)
		}
		if t, err := m.Enter("Finalize", w.Output, c, now); err != nil || t.Kind != StepTask {
			b.Fatal(t, err)
		}
		if f := m.TaskSucceeded("Finalize", w.Output, json.RawMessage(`{"StatusCode":200,"Payload":{}}`), c); f.Kind != StepSucceed {
			b.Fatal(f)
		}
	}
}
