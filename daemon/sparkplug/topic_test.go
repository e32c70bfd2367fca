package sparkplug_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/sparkplug"
)

func TestParseTopic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		topic string
		want  sparkplug.Topic
		err   string // substring of the error; empty for a good topic
	}{
		{name: "NBIRTH", topic: "spBv1.0/Plant1/NBIRTH/Line3", want: sparkplug.Topic{Type: sparkplug.NBIRTH, Group: "Plant1", EdgeNode: "Line3"}},
		{name: "NDEATH", topic: "spBv1.0/G/NDEATH/E", want: sparkplug.Topic{Type: sparkplug.NDEATH, Group: "G", EdgeNode: "E"}},
		{name: "NDATA", topic: "spBv1.0/G/NDATA/E", want: sparkplug.Topic{Type: sparkplug.NDATA, Group: "G", EdgeNode: "E"}},
		{name: "NCMD", topic: "spBv1.0/G/NCMD/E", want: sparkplug.Topic{Type: sparkplug.NCMD, Group: "G", EdgeNode: "E"}},
		{name: "DBIRTH", topic: "spBv1.0/G/DBIRTH/E/PLC-7", want: sparkplug.Topic{Type: sparkplug.DBIRTH, Group: "G", EdgeNode: "E", Device: "PLC-7"}},
		{name: "DDEATH", topic: "spBv1.0/G/DDEATH/E/D", want: sparkplug.Topic{Type: sparkplug.DDEATH, Group: "G", EdgeNode: "E", Device: "D"}},
		{name: "DDATA", topic: "spBv1.0/G/DDATA/E/D", want: sparkplug.Topic{Type: sparkplug.DDATA, Group: "G", EdgeNode: "E", Device: "D"}},
		{name: "DCMD", topic: "spBv1.0/G/DCMD/E/D", want: sparkplug.Topic{Type: sparkplug.DCMD, Group: "G", EdgeNode: "E", Device: "D"}},
		{name: "STATE", topic: "spBv1.0/STATE/scada-1", want: sparkplug.Topic{Type: sparkplug.STATE, HostID: "scada-1"}},
		{name: "group named STATE", topic: "spBv1.0/STATE/NDATA/E", want: sparkplug.Topic{Type: sparkplug.NDATA, Group: "STATE", EdgeNode: "E"}},
		{name: "UTF-8 and spaces in IDs", topic: "spBv1.0/Usine Nord/DDATA/Presse 2/Capteur-é", want: sparkplug.Topic{Type: sparkplug.DDATA, Group: "Usine Nord", EdgeNode: "Presse 2", Device: "Capteur-é"}},

		{name: "empty", topic: "", err: `namespace "" is not "spBv1.0"`},
		{name: "Sparkplug A", topic: "spAv1.0/G/NDATA/E", err: "Sparkplug A is not supported"},
		{name: "plain MQTT", topic: "factory/line3/temp", err: `namespace "factory"`},
		{name: "namespace case", topic: "SPBV1.0/G/NDATA/E", err: "namespace"},
		{name: "namespace only", topic: "spBv1.0", err: "1 levels"},
		{name: "no edge node", topic: "spBv1.0/G/NDATA", err: "3 levels"},
		{name: "too many levels", topic: "spBv1.0/G/DDATA/E/D/extra", err: "6 levels"},
		{name: "unknown type", topic: "spBv1.0/G/NFOO/E", err: `unknown message type "NFOO"`},
		{name: "lower-case type", topic: "spBv1.0/G/ndata/E", err: "unknown message type"},
		{name: "STATE as message type", topic: "spBv1.0/G/STATE/E", err: `unknown message type "STATE"`},
		{name: "node type with device", topic: "spBv1.0/G/NDATA/E/D", err: "NDATA takes no device_id"},
		{name: "device type without device", topic: "spBv1.0/G/DBIRTH/E", err: "DBIRTH needs a device_id"},
		{name: "empty group", topic: "spBv1.0//NDATA/E", err: "empty group_id"},
		{name: "empty edge node", topic: "spBv1.0/G/NDATA/", err: "empty edge_node_id"},
		{name: "empty device", topic: "spBv1.0/G/DDATA/E/", err: "empty device_id"},
		{name: "trailing slash on node topic", topic: "spBv1.0/G/NDATA/E/", err: "NDATA takes no device_id"},
		{name: "single-level wildcard", topic: "spBv1.0/+/NDATA/E", err: "MQTT wildcard"},
		{name: "multi-level wildcard", topic: "spBv1.0/G/DDATA/E/#", err: "MQTT wildcard"},
		{name: "empty host", topic: "spBv1.0/STATE/", err: "empty host_id"},
		{name: "STATE with extra level", topic: "spBv1.0/STATE/h/x", err: `unknown message type "h"`},
		{name: "invalid UTF-8", topic: "spBv1.0/G/NDATA/\xff", err: "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sparkplug.ParseTopic(tc.topic)
			if tc.err != "" {
				if !errors.Is(err, sparkplug.ErrInvalidTopic) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseTopic(%q) = %+v, %v; want an ErrInvalidTopic containing %q", tc.topic, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseTopic(%q) = %+v, %v; want %+v", tc.topic, got, err, tc.want)
			}
			if s := got.String(); s != tc.topic {
				t.Errorf("String() = %q, want %q", s, tc.topic)
			}
		})
	}
}

func TestMessageTypeString(t *testing.T) {
	for typ, want := range map[sparkplug.MessageType]string{
		sparkplug.NBIRTH: "NBIRTH", sparkplug.DCMD: "DCMD", sparkplug.STATE: "STATE", 0: "MessageType(0)", 42: "MessageType(42)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("MessageType(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}
