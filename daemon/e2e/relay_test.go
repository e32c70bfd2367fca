package e2e_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/internal/testkit"
)

// TestReplyRelayThroughAnExternalBroker is the relay attack on a real
// mosquitto with an ACL: a PLC allowed only to send requests (and read
// its own replies and the error topic) asks emberd, which publishes with
// its own wider rights, to reply on a press's command topic. emberd
// cannot see the PLC's ACL there, so it refuses every reply topic but
// ember/v1/<device>/reply/<client id>/…: a privileged observer hears
// nothing on the command topic, the PLC gets a refusal without its
// payload, and a reply under its reply topics arrives.
func TestReplyRelayThroughAnExternalBroker(t *testing.T) {
	mq := testkit.StartMosquittoWith(t, testkit.MosquittoOptions{
		Users: map[string]string{"ember": "ember-pw", "plc": "plc-pw", "admin": "admin-pw"},
		ACL: `user ember
topic readwrite #

user admin
topic readwrite #

user plc
topic write ember/v1/press-07/infer/+
topic read ember/v1/press-07/error/infer

# every client reads its own replies only
pattern read ember/v1/+/reply/%c/#
`,
	})
	newEmberd(t, daemonConfig{MQTT: fmt.Sprintf(`mqtt:
  embedded: {listen: ""}
  external: {url: %q, client_id: emberd-relay, username: ember, password: ember-pw, backoff: {min: 100ms, max: 1s}}
  requests: {enabled: true, max_tokens: 4}
`, mq.URL())})

	var mu sync.Mutex
	var observed []string
	observer := pahoLogin(t, mq.Addr, "observer", "admin", "admin-pw")
	if tok := observer.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		observed = append(observed, m.Topic()+" "+string(m.Payload()))
		mu.Unlock()
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	got := make(chan paho.Message, 16)
	plc := pahoLogin(t, mq.Addr, "plc-1", "plc", "plc-pw")
	for _, f := range []string{"ember/v1/press-07/error/infer", "ember/v1/press-07/reply/plc-1/#"} {
		if tok := plc.Subscribe(f, 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// emberd subscribes once it is connected; a request sent before is
	// simply not heard, so wait for its retained status.
	waitFor(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range observed {
			if m == "ember/v1/press-07/status online" {
				return true
			}
		}
		return false
	})

	const secret = "OPEN-VALVE-7"
	for _, replyTo := range []string{"plant/line3/press4/cmd", "ember/v1/press-07/result/alarms", "plc/anything"} {
		body := fmt.Sprintf(`{"id":%q,"prompt":%q,"reply_to":%q}`, replyTo, secret, replyTo)
		if tok := plc.Publish("ember/v1/press-07/infer/tiny", 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case m := <-got:
			if m.Topic() != "ember/v1/press-07/error/infer" || !strings.Contains(string(m.Payload()), "reply topic") {
				t.Fatalf("answer on %s: %s", m.Topic(), m.Payload())
			}
			if strings.Contains(string(m.Payload()), secret) {
				t.Fatalf("the refusal echoes the payload: %s", m.Payload())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("reply_to %s: no refusal", replyTo)
		}
	}
	// The allowed form works end to end.
	body := fmt.Sprintf(`{"id":"ok","prompt":%q,"reply_to":"ember/v1/press-07/reply/plc-1/r1"}`, secret)
	if tok := plc.Publish("ember/v1/press-07/infer/tiny", 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != "ember/v1/press-07/reply/plc-1/r1" || !strings.Contains(string(m.Payload()), `"request_id":"ok"`) {
			t.Fatalf("answer on %s: %s", m.Topic(), m.Payload())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no reply on the requester's reply topic")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range observed {
		if strings.HasPrefix(m, "plant/") || strings.HasPrefix(m, "plc/") || strings.HasPrefix(m, "ember/v1/press-07/result/") {
			t.Errorf("a reply was relayed: %s", m)
		}
	}
}

func pahoLogin(t *testing.T, addr, id, user, pass string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
