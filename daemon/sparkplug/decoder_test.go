package sparkplug_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// step is one message of a session test: what is sent, and what must
// come of it.
type step struct {
	name    string
	topic   string
	payload *sparkplugb.Payload
	err     error // the sentinel Decode must fail with; nil for success
	fields  map[string]any
	check   func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder)
}

// runSteps sends steps, in order, through one Decoder. Each is a subtest,
// and a failed step stops the rest, since they build on it.
func runSteps(t *testing.T, steps []step) *sparkplug.Decoder {
	t.Helper()
	d := newDecoder(t, sparkplug.Options{})
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			msg, err := d.Decode(s.topic, marshal(t, s.payload))
			if s.err != nil {
				if !errors.Is(err, s.err) {
					t.Fatalf("Decode = %+v, %v; want %v", msg, err, s.err)
				}
				if msg != nil {
					t.Errorf("Decode returned a message with its error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := msg.MetricErrors(); err != nil {
				t.Errorf("metric errors: %v", err)
			}
			if s.fields != nil {
				if got := msg.Fields(); !reflect.DeepEqual(got, s.fields) {
					t.Errorf("Fields() = %#v\nwant %#v", got, s.fields)
				}
			}
			if s.check != nil {
				s.check(t, msg, d)
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	return d
}

// online checks whether the Decoder holds edge node E1 as online.
func online(want bool) func(*testing.T, *sparkplug.Message, *sparkplug.Decoder) {
	return func(t *testing.T, _ *sparkplug.Message, d *sparkplug.Decoder) {
		t.Helper()
		info, ok := d.Node("G", "E1")
		if !ok || info.Online != want {
			t.Errorf("Node(G, E1) = %+v, %v; want Online %v", info, ok, want)
		}
	}
}

func TestNodeSession(t *testing.T) {
	birthFields := map[string]any{"bdSeq": int64(3), "Node Control/Rebirth": false, "Temperature": float64(20.5), "Running": true, "Offset": int64(-2)}
	runSteps(t, []step{
		{name: "data before birth", topic: ndata, payload: nodeData(1), err: sparkplug.ErrNoBirth},
		{name: "NBIRTH", topic: nbirth, payload: nodeBirth(0, 3), fields: birthFields, check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if msg.Type != sparkplug.NBIRTH || !msg.HasSeq || msg.Seq != 0 || !msg.Timestamp.Equal(ms(baseTime)) {
				t.Errorf("message header: %+v", msg)
			}
			info, _ := d.Node("G", "E1")
			want := sparkplug.NodeInfo{Group: "G", EdgeNode: "E1", Online: true, BdSeq: 3, HasBdSeq: true, Seq: 0, HasSeq: true, Metrics: 5}
			if !reflect.DeepEqual(info, want) {
				t.Errorf("Node = %+v\nwant %+v", info, want)
			}
		}},
		{name: "NDATA by alias", topic: ndata, payload: nodeData(1), fields: map[string]any{"Temperature": float64(21.25), "Offset": int64(-10)},
			check: func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
				m := msg.Metrics[0]
				if m.Name != "Temperature" || !m.HasAlias || m.Alias != 1 || m.Type != sparkplug.TypeFloat || !m.Timestamp.Equal(ms(baseTime+1)) {
					t.Errorf("metric resolved from the birth: %+v", m)
				}
				if msg.Gap != nil {
					t.Errorf("Gap = %+v", msg.Gap)
				}
			}},
		{name: "NDATA by name", topic: ndata, payload: payload(2, metric(name("Running"), boolv(false))), fields: map[string]any{"Running": false}},
		{name: "NDATA by alias and name", topic: ndata, payload: payload(3, metric(name("Running"), alias(2), dtype(sparkplug.TypeBoolean), boolv(true))), fields: map[string]any{"Running": true}},
		{name: "NDEATH", topic: ndeath, payload: payload(-1, bdSeq(3)), fields: map[string]any{"bdSeq": int64(3)}, check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if msg.Stale {
				t.Errorf("the current session's death is Stale")
			}
			online(false)(t, msg, d)
		}},
		{name: "NDATA after death", topic: ndata, payload: nodeData(4), err: sparkplug.ErrOffline},
		{name: "DBIRTH after death", topic: dbirth("D1"), payload: payload(4, metric(name("x"), dtype(sparkplug.TypeInt32), intv(1))), err: sparkplug.ErrOffline},
		{name: "repeated NDEATH", topic: ndeath, payload: payload(-1, bdSeq(3)), check: online(false)},
		{name: "rebirth", topic: nbirth, payload: nodeBirth(0, 4), check: online(true)},
		{name: "NDATA in the new session", topic: ndata, payload: nodeData(1), fields: map[string]any{"Temperature": float64(21.25), "Offset": int64(-10)}},
	})
}

func TestDeviceSessions(t *testing.T) {
	deviceBirth := func(seq int, prefix string) *sparkplugb.Payload {
		return payload(seq,
			metric(name(prefix+"/Pressure"), alias(10), dtype(sparkplug.TypeDouble), doublev(1.0)),
			metric(name(prefix+"/Count"), alias(11), dtype(sparkplug.TypeUInt32), intv(0)),
		)
	}
	deviceData := func(seq int) *sparkplugb.Payload {
		return payload(seq, metric(alias(10), doublev(2.5)), metric(alias(11), intv(7)))
	}
	runSteps(t, []step{
		{name: "DBIRTH before NBIRTH", topic: dbirth("D1"), payload: deviceBirth(0, "D1"), err: sparkplug.ErrNoBirth},
		{name: "NBIRTH", topic: nbirth, payload: nodeBirth(0, 1)},
		{name: "DBIRTH D1", topic: dbirth("D1"), payload: deviceBirth(1, "D1")},
		// Each device's aliases are its own, so D2 may reuse D1's numbers.
		{name: "DBIRTH D2", topic: dbirth("D2"), payload: deviceBirth(2, "D2")},
		{name: "DDATA D1", topic: ddata("D1"), payload: deviceData(3), fields: map[string]any{"D1/Pressure": 2.5, "D1/Count": uint64(7)}},
		{name: "DDATA D2", topic: ddata("D2"), payload: deviceData(4), fields: map[string]any{"D2/Pressure": 2.5, "D2/Count": uint64(7)}},
		{name: "node aliases are not a device's", topic: ddata("D1"), payload: payload(5, metric(alias(1), floatv(1))), err: sparkplug.ErrUnknownAlias},
		{name: "device aliases are not the node's", topic: ndata, payload: payload(6, metric(alias(10), doublev(1))), err: sparkplug.ErrUnknownAlias},
		{name: "DDATA of an unborn device", topic: ddata("D3"), payload: deviceData(7), err: sparkplug.ErrNoBirth},
		{name: "DDEATH D1", topic: ddeath("D1"), payload: payload(8), check: func(t *testing.T, _ *sparkplug.Message, d *sparkplug.Decoder) {
			info, _ := d.Node("G", "E1")
			want := []sparkplug.DeviceInfo{{ID: "D1", Online: false}, {ID: "D2", Online: true, Metrics: 2}}
			if !info.Online || !reflect.DeepEqual(info.Devices, want) {
				t.Errorf("Node = %+v; want online with devices %+v", info, want)
			}
		}},
		{name: "DDATA after DDEATH", topic: ddata("D1"), payload: deviceData(9), err: sparkplug.ErrOffline},
		{name: "the other device lives on", topic: ddata("D2"), payload: deviceData(10), fields: map[string]any{"D2/Pressure": 2.5, "D2/Count": uint64(7)}},
		{name: "DDEATH of an unknown device", topic: ddeath("D9"), payload: payload(11)},
		{name: "D1 rebirths", topic: dbirth("D1"), payload: deviceBirth(12, "D1")},
		{name: "DDATA D1 again", topic: ddata("D1"), payload: deviceData(13), fields: map[string]any{"D1/Pressure": 2.5, "D1/Count": uint64(7)}},
		{name: "NDEATH ends every device", topic: ndeath, payload: payload(-1, bdSeq(1)), check: func(t *testing.T, _ *sparkplug.Message, d *sparkplug.Decoder) {
			if info, _ := d.Node("G", "E1"); info.Online || len(info.Devices) != 0 {
				t.Errorf("Node = %+v; want offline without devices", info)
			}
		}},
		{name: "DDATA after NDEATH", topic: ddata("D2"), payload: deviceData(14), err: sparkplug.ErrOffline},
		{name: "DDEATH after NDEATH", topic: ddeath("D2"), payload: payload(15)},
		{name: "NBIRTH", topic: nbirth, payload: nodeBirth(0, 2)},
		{name: "devices need their own rebirth", topic: ddata("D2"), payload: deviceData(1), err: sparkplug.ErrNoBirth},
	})
}

// TestTemplateMembersByBirth checks that the members of a template
// instance in DDATA, sent without their datatypes, decode by the types
// the DBIRTH gave them.
func TestTemplateMembersByBirth(t *testing.T) {
	instance := func(members ...*sparkplugb.Payload_Metric) *sparkplugb.Payload_Template {
		return &sparkplugb.Payload_Template{TemplateRef: proto.String("Motor"), Metrics: members}
	}
	runSteps(t, []step{
		{name: "NBIRTH", topic: nbirth, payload: payload(0,
			bdSeq(0),
			metric(name("_types_/Motor"), dtype(sparkplug.TypeTemplate), templatev(&sparkplugb.Payload_Template{
				IsDefinition: proto.Bool(true),
				Metrics:      []*sparkplugb.Payload_Metric{metric(name("RPM"), dtype(sparkplug.TypeInt16), intv(0))},
			})),
		)},
		{name: "DBIRTH", topic: dbirth("D1"), payload: payload(1,
			metric(name("Pump"), alias(5), dtype(sparkplug.TypeTemplate), templatev(instance(
				metric(name("RPM"), dtype(sparkplug.TypeInt16), intv(0)),
				metric(name("Faulted"), dtype(sparkplug.TypeBoolean), boolv(false)),
			))),
		)},
		{name: "DDATA", topic: ddata("D1"), payload: payload(2, metric(alias(5), templatev(instance(
			metric(name("RPM"), intv(0xFFFF)),
		)))), check: func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
			pump, _ := msg.Metric("Pump")
			tpl, ok := pump.Value.(sparkplug.Template)
			if !ok {
				t.Fatalf("Pump = %#v, want a Template", pump.Value)
			}
			if got := tpl.Fields(); !reflect.DeepEqual(got, map[string]any{"RPM": int64(-1)}) {
				t.Errorf("members = %v", got)
			}
			if m, _ := tpl.Metric("RPM"); m.Type != sparkplug.TypeInt16 {
				t.Errorf("RPM member = %+v", m)
			}
		}},
		{name: "DDATA with an unknown member", topic: ddata("D1"), payload: payload(3, metric(alias(5), templatev(instance(
			metric(name("Torque"), intv(1)),
		)))), check: func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
			pump, _ := msg.Metric("Pump")
			member, _ := pump.Value.(sparkplug.Template).Metric("Torque")
			if !errors.Is(member.Err, sparkplug.ErrUnknownMetric) {
				t.Errorf("member Err = %v, want ErrUnknownMetric", member.Err)
			}
		}},
	})
}

func TestStaleDeath(t *testing.T) {
	runSteps(t, []step{
		{name: "NBIRTH bdSeq 7", topic: nbirth, payload: nodeBirth(0, 7)},
		// The edge node reconnects; its old connection's will arrives
		// after the new birth.
		{name: "NBIRTH bdSeq 8", topic: nbirth, payload: nodeBirth(0, 8)},
		{name: "late NDEATH bdSeq 7", topic: ndeath, payload: payload(-1, bdSeq(7)), check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if !msg.Stale {
				t.Errorf("Stale = false for an old bdSeq")
			}
			online(true)(t, msg, d)
			if s := d.Stats(); s.StaleDeaths != 1 {
				t.Errorf("StaleDeaths = %d", s.StaleDeaths)
			}
		}},
		{name: "data still decodes", topic: ndata, payload: nodeData(1)},
		{name: "NDEATH without bdSeq", topic: ndeath, payload: payload(-1), check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if !msg.Stale {
				t.Errorf("a death without bdSeq ended a session whose birth had one")
			}
			online(true)(t, msg, d)
		}},
		{name: "NDEATH bdSeq 8", topic: ndeath, payload: payload(-1, bdSeq(8)), check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if msg.Stale {
				t.Errorf("Stale = true for the current bdSeq")
			}
			online(false)(t, msg, d)
		}},
		{name: "late NDEATH of an offline node", topic: ndeath, payload: payload(-1, bdSeq(6)), check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			if !msg.Stale {
				t.Errorf("Stale = false")
			}
			online(false)(t, msg, d)
		}},
		{name: "NBIRTH without bdSeq", topic: nbirth, payload: payload(0, metric(name("x"), dtype(sparkplug.TypeInt32), intv(1)))},
		{name: "any NDEATH ends it", topic: ndeath, payload: payload(-1, bdSeq(99)), check: online(false)},
		{name: "NDEATH of an unknown node", topic: "spBv1.0/G/NDEATH/other", payload: payload(-1, bdSeq(1))},
	})
}

func TestSeqGaps(t *testing.T) {
	gap := func(expected, got uint8) func(*testing.T, *sparkplug.Message, *sparkplug.Decoder) {
		return func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
			if want := (&sparkplug.SeqGap{Expected: expected, Got: got}); !reflect.DeepEqual(msg.Gap, want) {
				t.Errorf("Gap = %+v, want %+v", msg.Gap, want)
			}
		}
	}
	noGap := func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
		if msg.Gap != nil {
			t.Errorf("Gap = %+v, want none", msg.Gap)
		}
	}
	d := runSteps(t, []step{
		// Sparkplug 3.0 lets NBIRTH start anywhere in 0-255.
		{name: "NBIRTH at 253", topic: nbirth, payload: nodeBirth(253, 1), check: noGap},
		{name: "254", topic: ndata, payload: nodeData(254), check: noGap},
		{name: "DBIRTH counts", topic: dbirth("D1"), payload: payload(255, metric(name("v"), alias(1), dtype(sparkplug.TypeInt32), intv(0))), check: noGap},
		{name: "wraps to 0", topic: ddata("D1"), payload: payload(0, metric(alias(1), intv(5))), check: noGap},
		{name: "1", topic: ndata, payload: nodeData(1), check: noGap},
		{name: "2 and 3 lost", topic: ndata, payload: nodeData(4), check: func(t *testing.T, msg *sparkplug.Message, d *sparkplug.Decoder) {
			gap(2, 4)(t, msg, d)
			if msg.Gap != nil && msg.Gap.Missed() != 2 {
				t.Errorf("Missed() = %d, want 2", msg.Gap.Missed())
			}
			if len(msg.Metrics) != 2 || msg.Metrics[0].Name != "Temperature" {
				t.Errorf("the message after a gap did not decode: %+v", msg.Metrics)
			}
		}},
		{name: "resynchronised", topic: ndata, payload: nodeData(5), check: noGap},
		{name: "DDEATH counts", topic: ddeath("D1"), payload: payload(6), check: noGap},
		{name: "a step back is a gap too", topic: ndata, payload: nodeData(2), check: gap(7, 2)},
		{name: "3", topic: ndata, payload: nodeData(3), check: noGap},
		{name: "a failed message still counts", topic: ndata, payload: payload(4, metric(alias(77), intv(1))), err: sparkplug.ErrUnknownAlias},
		{name: "after the failed one", topic: ndata, payload: nodeData(5), check: noGap},
		{name: "commands carry no node seq", topic: ncmd, payload: payload(200, metric(name("Node Control/Rebirth"), dtype(sparkplug.TypeBoolean), boolv(true)))},
		{name: "nor do they break it", topic: ndata, payload: nodeData(6), check: noGap},
		{name: "data without seq is not checked", topic: ndata, payload: nodeData(-1), check: noGap},
		{name: "seq over 255", topic: ndata, payload: nodeData(256), err: sparkplug.ErrInvalidPayload},
		{name: "NDEATH", topic: ndeath, payload: payload(-1, bdSeq(1))},
		{name: "a new session starts its own count", topic: nbirth, payload: nodeBirth(17, 2), check: noGap},
		{name: "18", topic: ndata, payload: nodeData(18), check: noGap},
	})
	if got := (sparkplug.SeqGap{Expected: 250, Got: 3}).Missed(); got != 9 {
		t.Errorf("Missed across the wrap = %d, want 9", got)
	}
	if s := d.Stats(); s.SeqGaps != 2 {
		t.Errorf("SeqGaps = %d, want 2", s.SeqGaps)
	}
}

func TestUnknownMetrics(t *testing.T) {
	runSteps(t, []step{
		{name: "no birth: alias", topic: ndata, payload: payload(1, metric(alias(1), floatv(1))), err: sparkplug.ErrNoBirth},
		// Even a metric that names itself and its type needs the birth: its
		// session, and so its seq, are unknown.
		{name: "no birth: self-describing", topic: ndata, payload: payload(1, metric(name("Temperature"), dtype(sparkplug.TypeFloat), floatv(1))), err: sparkplug.ErrNoBirth},
		{name: "NBIRTH", topic: nbirth, payload: nodeBirth(0, 1)},
		{name: "alias not in the birth", topic: ndata, payload: payload(1, metric(alias(1), floatv(1)), metric(alias(99), intv(1))), err: sparkplug.ErrUnknownAlias},
		{name: "name not in the birth", topic: ndata, payload: payload(2, metric(name("Humidity"), dtype(sparkplug.TypeFloat), floatv(1))), err: sparkplug.ErrUnknownMetric},
		{name: "alias and name disagree", topic: ndata, payload: payload(3, metric(name("Running"), alias(1), floatv(1))), err: sparkplug.ErrUnknownAlias},
		{name: "datatype disagrees", topic: ndata, payload: payload(4, metric(alias(1), dtype(sparkplug.TypeDouble), doublev(1))), err: sparkplug.ErrUnknownMetric},
		{name: "neither name nor alias", topic: ndata, payload: payload(5, metric(floatv(1))), err: sparkplug.ErrInvalidPayload},
		{name: "still in session", topic: ndata, payload: nodeData(6)},
	})
}

func TestInvalidBirths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics []*sparkplugb.Payload_Metric
		msg     string
	}{
		{"metric without name", []*sparkplugb.Payload_Metric{metric(alias(1), dtype(sparkplug.TypeInt32), intv(1))}, "birth metric 0 has no name"},
		{"metric without datatype", []*sparkplugb.Payload_Metric{metric(name("a"), intv(1))}, `birth metric "a" has no datatype`},
		{"alias used twice", []*sparkplugb.Payload_Metric{
			metric(name("a"), alias(4), dtype(sparkplug.TypeInt32), intv(1)),
			metric(name("b"), alias(4), dtype(sparkplug.TypeInt32), intv(1)),
		}, `birth metrics "a" and "b" have the same alias 4`},
		{"name defined twice", []*sparkplugb.Payload_Metric{
			metric(name("a"), alias(4), dtype(sparkplug.TypeInt32), intv(1)),
			metric(name("a"), alias(5), dtype(sparkplug.TypeInt32), intv(1)),
		}, `birth metric "a" is defined twice, differently`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t, sparkplug.Options{})
			mustDecode(t, d, nbirth, nodeBirth(0, 1))
			mustDecode(t, d, dbirth("D1"), payload(1, metric(name("v"), alias(1), dtype(sparkplug.TypeInt32), intv(0))))

			// A bad DBIRTH forgets the device and leaves the node be.
			_, err := d.Decode(dbirth("D1"), marshal(t, payload(2, tc.metrics...)))
			if !errors.Is(err, sparkplug.ErrInvalidPayload) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("DBIRTH: err = %v; want ErrInvalidPayload containing %q", err, tc.msg)
			}
			if _, err := d.Decode(ddata("D1"), marshal(t, payload(3, metric(alias(1), intv(1))))); !errors.Is(err, sparkplug.ErrNoBirth) {
				t.Errorf("DDATA after a bad DBIRTH: err = %v, want ErrNoBirth", err)
			}
			mustDecode(t, d, ndata, nodeData(4))

			// A bad NBIRTH forgets the node.
			_, err = d.Decode(nbirth, marshal(t, payload(0, tc.metrics...)))
			if !errors.Is(err, sparkplug.ErrInvalidPayload) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("NBIRTH: err = %v; want ErrInvalidPayload containing %q", err, tc.msg)
			}
			if _, ok := d.Node("G", "E1"); ok {
				t.Errorf("the node survived a bad NBIRTH")
			}
			if _, err := d.Decode(ndata, marshal(t, nodeData(1))); !errors.Is(err, sparkplug.ErrNoBirth) {
				t.Errorf("NDATA after a bad NBIRTH: err = %v, want ErrNoBirth", err)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	rebirth := metric(name("Node Control/Rebirth"), dtype(sparkplug.TypeBoolean), boolv(true))
	runSteps(t, []step{
		{name: "NCMD to an unknown node", topic: ncmd, payload: payload(-1, rebirth), fields: map[string]any{"Node Control/Rebirth": true}},
		{name: "NCMD by alias to an unknown node", topic: ncmd, payload: payload(-1, metric(alias(2), boolv(true))), err: sparkplug.ErrUnknownAlias},
		{name: "NBIRTH", topic: nbirth, payload: nodeBirth(0, 1)},
		{name: "DBIRTH", topic: dbirth("D1"), payload: payload(1, metric(name("Setpoint"), alias(9), dtype(sparkplug.TypeUInt16), intv(0)))},
		{name: "NCMD by alias", topic: ncmd, payload: payload(-1, metric(alias(2), boolv(false))), fields: map[string]any{"Running": false}},
		{name: "DCMD by alias", topic: "spBv1.0/G/DCMD/E1/D1", payload: payload(-1, metric(alias(9), intv(65535))), fields: map[string]any{"Setpoint": uint64(65535)}},
		{name: "DCMD to an unknown device", topic: "spBv1.0/G/DCMD/E1/D2", payload: payload(-1, metric(alias(9), intv(1))), err: sparkplug.ErrUnknownAlias},
		{name: "seq unaffected", topic: ndata, payload: nodeData(2), check: func(t *testing.T, msg *sparkplug.Message, _ *sparkplug.Decoder) {
			if msg.Gap != nil {
				t.Errorf("Gap = %+v", msg.Gap)
			}
		}},
	})
}

func TestHostState(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    *sparkplug.HostState
	}{
		{"online", `{"online":true,"timestamp":1668114759262}`, &sparkplug.HostState{Online: true, Timestamp: ms(1668114759262)}},
		{"offline, spaced, extra key", ` { "timestamp": 5, "online": false, "note": "x" } `, &sparkplug.HostState{Timestamp: ms(5)}},
		{"Sparkplug 2 ONLINE", `ONLINE`, nil},
		{"no timestamp", `{"online":true}`, nil},
		{"no online", `{"timestamp":1}`, nil},
		{"online as string", `{"online":"true","timestamp":1}`, nil},
		{"negative timestamp", `{"online":true,"timestamp":-1}`, nil},
		{"timestamp out of range", `{"online":true,"timestamp":18446744073709551615}`, nil},
		{"trailing data", `{"online":true,"timestamp":1}{}`, nil},
		{"empty", ``, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(t, sparkplug.Options{})
			msg, err := d.Decode("spBv1.0/STATE/scada", []byte(tc.payload))
			if tc.want == nil {
				if !errors.Is(err, sparkplug.ErrMalformed) {
					t.Fatalf("Decode = %+v, %v; want ErrMalformed", msg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg.Type != sparkplug.STATE || msg.Topic.HostID != "scada" || !reflect.DeepEqual(msg.Host, tc.want) {
				t.Errorf("Decode = %+v, Host %+v; want %+v", msg, msg.Host, tc.want)
			}
		})
	}
}

func TestRebirthRequest(t *testing.T) {
	now := time.UnixMilli(baseTime + 42)
	for _, from := range []string{ndata, ddata("D7"), "spBv1.0/G/DBIRTH/E1/D7"} {
		t.Run(from, func(t *testing.T) {
			src, err := sparkplug.ParseTopic(from)
			if err != nil {
				t.Fatal(err)
			}
			topic, body, err := sparkplug.RebirthRequest(src, now)
			if err != nil {
				t.Fatal(err)
			}
			if topic != ncmd {
				t.Errorf("topic = %q, want %q", topic, ncmd)
			}
			// What ember publishes must decode as Sparkplug: through a
			// Decoder, and field by field.
			msg, err := newDecoder(t, sparkplug.Options{}).Decode(topic, body)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := msg.Metric(sparkplug.RebirthMetric)
			if !ok || m.Type != sparkplug.TypeBoolean || m.Value != true || !m.Timestamp.Equal(now) || !msg.Timestamp.Equal(now) || msg.HasSeq {
				t.Errorf("request = %+v, metric %+v", msg, m)
			}
			var p sparkplugb.Payload
			if err := proto.Unmarshal(body, &p); err != nil || len(p.Metrics) != 1 || p.Metrics[0].GetName() != "Node Control/Rebirth" {
				t.Errorf("payload = %v, %v", &p, err)
			}
		})
	}
	if _, _, err := sparkplug.RebirthRequest(sparkplug.Topic{Type: sparkplug.STATE, HostID: "h"}, now); !errors.Is(err, sparkplug.ErrInvalidTopic) {
		t.Errorf("rebirth of a STATE topic: err = %v", err)
	}
}

// TestNeedsRebirth checks which failures a host answers with a rebirth
// request, on errors as Decode returns them.
func TestNeedsRebirth(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{})
	_, errNoBirth := d.Decode(ndata, marshal(t, nodeData(1)))
	mustDecode(t, d, nbirth, nodeBirth(0, 1))
	_, errAlias := d.Decode(ndata, marshal(t, payload(1, metric(alias(50), intv(1)))))
	_, errMetric := d.Decode(ndata, marshal(t, payload(2, metric(name("new"), dtype(sparkplug.TypeInt32), intv(1)))))
	mustDecode(t, d, ndeath, payload(-1, bdSeq(1)))
	_, errOffline := d.Decode(ndata, marshal(t, nodeData(3)))
	_, errMalformed := d.Decode(ndata, []byte{0xFF})
	_, errTopic := d.Decode("spBv1.0/G", nil)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no birth", errNoBirth, true},
		{"unknown alias", errAlias, true},
		{"unknown metric", errMetric, true},
		{"offline", errOffline, true},
		{"malformed", errMalformed, false},
		{"bad topic", errTopic, false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sparkplug.NeedsRebirth(tc.err); got != tc.want {
				t.Errorf("NeedsRebirth(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.err != nil && !strings.HasPrefix(tc.err.Error(), "sparkplug: ") {
				t.Errorf("error %q lacks the package prefix", tc.err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	_, err := sparkplug.NewDecoder(sparkplug.Options{MaxMetrics: -1, MaxNodes: -5})
	if err == nil || !strings.Contains(err.Error(), "MaxMetrics is -1") || !strings.Contains(err.Error(), "MaxNodes is -5") {
		t.Errorf("NewDecoder with negative limits: err = %v; want both named", err)
	}
}

// TestConcurrentDecode decodes many edge nodes' sessions at once, one
// goroutine per edge node as a pipeline would; run it with -race.
func TestConcurrentDecode(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{MaxNodes: 16})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			node := fmt.Sprintf("spBv1.0/G/%%s/E%d", g)
			for round := range 20 {
				msgs := []struct {
					topic string
					p     *sparkplugb.Payload
				}{
					{fmt.Sprintf(node, "NBIRTH"), nodeBirth(0, uint64(round))},
					{fmt.Sprintf(node, "NDATA"), nodeData(1)},
					{fmt.Sprintf(node, "NDATA"), nodeData(2)},
					{fmt.Sprintf(node, "NDEATH"), payload(-1, bdSeq(uint64(round)))},
				}
				for _, m := range msgs {
					// Evictions by other goroutines may make data fail with
					// ErrNoBirth; anything else is a bug.
					if _, err := d.Decode(m.topic, marshal(t, m.p)); err != nil && !errors.Is(err, sparkplug.ErrNoBirth) {
						t.Errorf("%s: %v", m.topic, err)
					}
				}
				_ = d.Stats()
			}
		})
	}
	wg.Wait()
	if s := d.Stats(); s.Nodes > 16 {
		t.Errorf("Nodes = %d, more than MaxNodes", s.Nodes)
	}
}

// TestMessageOwnsItsBytes checks Decode's promise that the Message shares
// no memory with the payload, which an MQTT client may reuse.
func TestMessageOwnsItsBytes(t *testing.T) {
	p := payload(0, metric(name("blob"), dtype(sparkplug.TypeBytes), bytesv([]byte("abcdef"))), metric(name("s"), dtype(sparkplug.TypeString), strv("text")))
	p.Body = []byte("body")
	body := marshal(t, p)
	msg, err := newDecoder(t, sparkplug.Options{}).Decode(nbirth, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if f := msg.Fields(); string(f["blob"].([]byte)) != "abcdef" || f["s"] != "text" || string(msg.Body) != "body" {
		t.Errorf("the message changed with its payload: %v, body %q", f, msg.Body)
	}
}
