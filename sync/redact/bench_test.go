package redact

import "testing"

var benchDoc = []byte(`{"job_id":123456,"pipeline":"alarms","device_id":"bench","topic":"plant/line3/press-04/alarm","output":{"severity":"high","action":"reduce press speed and inspect cylinder 2","shutdown":false},"model":"qwen2.5-0.5b-instruct-q4_k_m","created_at":"2026-03-02T07:14:01.234Z","input":{"id":"m-000123456","machine":"press-04","code":"E-217","text":"hydraulic pressure low on cylinder 2","operator":"Jane","value":81.5}}`)

func BenchmarkRedactBuiltins(b *testing.B) {
	r, _ := New([]Rule{{Builtin: "email"}, {Builtin: "phone"}, {Builtin: "ipv4"}, {Builtin: "serial"}, {Field: "input.operator"}})
	b.SetBytes(int64(len(benchDoc)))
	for b.Loop() {
		r.Redact(benchDoc)
	}
}

func BenchmarkRedactNone(b *testing.B) {
	r, _ := New(nil)
	b.SetBytes(int64(len(benchDoc)))
	for b.Loop() {
		r.Redact(benchDoc)
	}
}
