package jobs

import (
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/pipeline"
)

// TestReplyTopics drives replyRefusal with good and hostile reply topics:
// a reply may never lend the requester emberd's rights.
func TestReplyTopics(t *testing.T) {
	mayWrite := func(t string) bool { return strings.HasPrefix(t, "tech/") }
	embedded := pipeline.Message{Broker: "embedded", Client: "tech-1", MayPublish: mayWrite}
	external := pipeline.Message{Broker: "external", Client: "external:ember-d1"}
	tests := []struct {
		name  string
		msg   pipeline.Message
		topic string
		want  string // "" allowed, else a part of the refusal
	}{
		{"own ACL", embedded, "tech/replies", ""},
		{"own reply prefix", embedded, "ember/v1/d1/reply/tech-1/r1", ""},
		{"deep own reply prefix", embedded, "ember/v1/d1/reply/tech-1/a/b/c", ""},
		{"forbidden by ACL", embedded, "plant/line3/press4/cmd", "may not publish there"},
		{"another client's prefix", embedded, "ember/v1/d1/reply/tech-2/r1", "another client's"},
		{"bare reply prefix", embedded, "ember/v1/d1/reply/tech-1", "want ember/v1/d1/reply/<client id>/<topic>"},
		{"empty client level", embedded, "ember/v1/d1/reply//r1", "want ember/v1/d1/reply/"},
		{"ember's result topic", embedded, "ember/v1/d1/result/alarms", "emberd's own topics"},
		{"ember's request topic (a loop)", embedded, "ember/v1/d1/infer/tiny", "emberd's own topics"},
		{"ember's device root", embedded, "ember/v1/d1", "emberd's own topics"},
		{"wildcard +", embedded, "tech/+/x", "wildcard"},
		{"wildcard #", embedded, "tech/#", "wildcard"},
		{"NUL", embedded, "tech/a\x00b", "NUL"},
		{"broker topic", embedded, "$SYS/broker/x", "broker topic"},
		{"too long", embedded, "tech/" + strings.Repeat("x", MaxReplyTopic), "over the limit"},
		{"not UTF-8", embedded, "tech/\xff", "UTF-8"},
		{"slash trick: empty level before ember", embedded, "/ember/v1/d1/reply/tech-1/x", "may not publish"},
		{"slash trick: double slash inside reply", embedded, "ember/v1/d1/reply/tech-1//x", ""},
		{"slash trick: dot levels", embedded, "ember/v1/d1/reply/tech-1/../../result/x", ""}, // MQTT has no '..': still under the prefix
		{"slash in client id", pipeline.Message{Broker: "embedded", Client: "tech-1/x", MayPublish: mayWrite}, "ember/v1/d1/reply/tech-1/x/r", "cannot name a topic level"},
		{"no ACL known on the embedded broker", pipeline.Message{Broker: "embedded", Client: "tech-1"}, "tech/replies", "cannot see the requester's rights"},
		{"external: reply prefix", external, "ember/v1/d1/reply/tech-9/r1", ""},
		{"external: anything else", external, "tech/replies", "cannot see the requester's rights"},
		{"external: relay", external, "plant/line3/press4/cmd", "cannot see the requester's rights"},
		{"external: own topics", external, "ember/v1/d1/status", "emberd's own topics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := replyRefusal("d1", tt.msg, tt.topic)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("allowed")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("refusal %q does not say %q", err, tt.want)
			}
		})
	}
}
