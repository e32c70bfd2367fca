package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/ember-edge/ember/daemon/store"
)

// usersYAML is a plant's logins: a PLC that may publish its readings and
// ask for inference, a SCADA that reads the plant, and a technician with
// no ACL (so, deny by default, nothing but its own reply topics).
func usersYAML(t *testing.T) string {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	return fmt.Sprintf(`users: [
  {username: plc, password_hash: %q, acl: [
    {topic: "plant/line3/+/reading", access: write},
    {topic: "ember/v1/d1/infer/+", access: write},
    {topic: "ember/v1/d1/error/infer", access: read},
    {topic: "plc/replies/#", access: readwrite}]},
  {username: scada, password_hash: %q, acl: [{topic: "plant/#", access: read}, {topic: "#", access: read}]},
  {username: admin, password_hash: %q, acl: [{topic: "#", access: readwrite}]},
  {username: noacl, password_hash: %q}]`, hash("plc-pw"), hash("scada-pw"), hash("admin-pw"), hash("noacl-pw"))
}

// connectPacket encodes a CONNECT. user and pass nil leave their flags
// unset; empty slices set them with zero-length values.
func connectPacket(t *testing.T, version byte, id string, user, pass []byte) []byte {
	t.Helper()
	name := []byte("MQTT")
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: name, Clean: true, Keepalive: 30, ClientIdentifier: id,
			UsernameFlag: user != nil, Username: user, PasswordFlag: pass != nil, Password: pass}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// connack is what the broker answered a raw CONNECT with.
type connack struct {
	closed bool // no CONNACK: the connection was closed
	code   byte
	reason string
}

// rawConnect writes raw bytes as a client's first packet and reads the
// answer.
func rawConnect(t *testing.T, addr string, version byte, raw []byte) connack {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	first, err := r.ReadByte()
	if err != nil {
		return connack{closed: true}
	}
	fh := packets.FixedHeader{}
	if err := fh.Decode(first); err != nil || fh.Type != packets.Connack {
		t.Fatalf("first answer is packet type %d, not CONNACK (%v)", fh.Type, err)
	}
	n, mult := 0, 1
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		n += int(b&127) * mult
		mult *= 128
		if b < 128 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: version}
	if err := pk.ConnackDecode(body); err != nil {
		t.Fatal(err)
	}
	return connack{code: pk.ReasonCode, reason: pk.Properties.ReasonString}
}

// TestConnectCredentials is the door, good and hostile: what a client
// "configured for an anonymous broker" sends (empty username and
// password, which MQTT allows and mosquitto accepts) is anonymous; it is
// let in where anonymous clients are, and refused with "not authorized"
// and a reason where they are not.
func TestConnectCredentials(t *testing.T) {
	anon := startBrokerWith(t, "", "")
	users := startBrokerWith(t, usersYAML(t), "")
	usersAnon := startBrokerWith(t, usersYAML(t)+", allow_anonymous: true", "")
	b := func(s string) []byte { return []byte(s) }
	valid := func(v byte, user, pass []byte) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return connectPacket(t, v, "c1", user, pass) }
	}
	tests := []struct {
		name    string
		broker  *testBroker
		version byte
		raw     func(*testing.T) []byte
		want    connack
		reason  string // part of the MQTT 5 reason string
	}{
		{"v4 no credentials, anonymous broker", anon, 4, valid(4, nil, nil), connack{code: 0}, ""},
		{"v4 empty username and password, anonymous broker", anon, 4, valid(4, b(""), b("")), connack{code: 0}, ""},
		{"v5 empty username and password, anonymous broker", anon, 5, valid(5, b(""), b("")), connack{code: 0}, ""},
		{"v4 empty username and password, anonymous allowed next to users", usersAnon, 4, valid(4, b(""), b("")), connack{code: 0}, ""},
		{"v4 empty username and password, anonymous off", users, 4, valid(4, b(""), b("")), connack{code: 0x05}, ""},
		{"v5 empty username and password, anonymous off", users, 5, valid(5, b(""), b("")), connack{code: 0x87}, "anonymous clients are not allowed"},
		{"v5 no credentials, anonymous off", users, 5, valid(5, nil, nil), connack{code: 0x87}, "anonymous"},
		{"v4 no credentials, anonymous off", users, 4, valid(4, nil, nil), connack{code: 0x05}, ""},
		{"v4 good login", users, 4, valid(4, b("plc"), b("plc-pw")), connack{code: 0}, ""},
		{"v5 good login", users, 5, valid(5, b("plc"), b("plc-pw")), connack{code: 0}, ""},
		{"v5 wrong password", users, 5, valid(5, b("plc"), b("nope")), connack{code: 0x86}, ""},
		{"v4 wrong password", users, 4, valid(4, b("plc"), b("nope")), connack{code: 0x05}, ""},
		{"v5 unknown user", users, 5, valid(5, b("mallory"), b("plc-pw")), connack{code: 0x86}, ""},
		{"v5 user with empty password", users, 5, valid(5, b("plc"), b("")), connack{code: 0x86}, ""},
		{"v5 password without username", users, 5, valid(5, nil, b("plc-pw")), connack{code: 0x86}, ""},
		{"v4 anonymous next to users cannot pass as a user", usersAnon, 5, valid(5, b("plc"), b("")), connack{code: 0x86}, ""},
		{"truncated password", users, 4, func(t *testing.T) []byte {
			raw := connectPacket(t, 4, "c1", b("plc"), b("plc-pw"))
			raw[1] -= 4 // the remaining length ends inside the password
			return raw[:len(raw)-4]
		}, connack{closed: true}, ""},
		{"username without its flag", users, 4, func(t *testing.T) []byte {
			raw := connectPacket(t, 4, "c1", b("plc"), nil)
			raw[9] &^= 0x80 // clear the username flag; the username stays
			return raw
		}, connack{closed: true}, ""},
		{"wrong protocol name", anon, 4, func(t *testing.T) []byte {
			raw := connectPacket(t, 4, "c1", nil, nil)
			copy(raw[4:8], "MQTX")
			return raw
		}, connack{closed: true}, ""},
		{"not a CONNECT first", anon, 4, func(*testing.T) []byte { return []byte{0xc0, 0x00} /* PINGREQ */ }, connack{closed: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawConnect(t, tt.broker.addr, tt.version, tt.raw(t))
			if tt.want.closed {
				// A malformed CONNECT is refused: closed, or a CONNACK
				// with an error code.
				if !got.closed && got.code == 0 {
					t.Fatalf("malformed CONNECT accepted: %+v", got)
				}
				return
			}
			if got.closed || got.code != tt.want.code {
				t.Fatalf("CONNACK %+v, want code %#x", got, tt.want.code)
			}
			if !strings.Contains(got.reason, tt.reason) {
				t.Fatalf("reason %q does not say %q", got.reason, tt.reason)
			}
		})
	}
}

// login connects an MQTT 5 client with credentials; got receives
// "topic payload" for each message.
func login(t *testing.T, addr, id, user, pass string, got chan<- string) *paho5.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return login5(t, conn, id, user, pass, got)
}

func login5(t *testing.T, conn net.Conn, id, user, pass string, got chan<- string) *paho5.Client {
	t.Helper()
	c := paho5.NewClient(paho5.ClientConfig{Conn: conn, OnPublishReceived: []func(paho5.PublishReceived) (bool, error){
		func(pr paho5.PublishReceived) (bool, error) {
			select {
			case got <- pr.Packet.Topic + " " + string(pr.Packet.Payload):
			default:
			}
			return true, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cp := &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}
	if user != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = user, true, []byte(pass), true
	}
	if ca, err := c.Connect(ctx, cp); err != nil || ca.ReasonCode != 0 {
		t.Fatalf("connect %s as %s: %v %+v", id, user, err, ca)
	}
	t.Cleanup(func() { c.Disconnect(&paho5.Disconnect{}) })
	return c
}

// TestACLs drives each access of a deny-by-default ACL, publishing and
// subscribing, with filters that try to reach past a rule.
func TestACLs(t *testing.T) {
	tb := startBrokerWith(t, usersYAML(t), "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clients := map[string]*paho5.Client{}
	for _, u := range []string{"plc", "scada", "noacl"} {
		clients[u] = login(t, tb.addr, u+"-1", u, u+"-pw", make(chan string, 10))
	}
	tests := []struct {
		user, op, topic string
		allowed         bool
	}{
		{"plc", "pub", "plant/line3/press4/reading", true},
		{"plc", "pub", "plant/line3/press4/cmd", false},
		{"plc", "pub", "plant/line4/press4/reading", false},
		{"plc", "pub", "ember/v1/d1/infer/tiny", true},
		{"plc", "pub", "ember/v1/d1/result/alarms", false},
		{"plc", "sub", "plant/line3/+/reading", false}, // write only
		{"plc", "sub", "ember/v1/d1/error/infer", true},
		{"plc", "sub", "ember/v1/d1/error/#", false}, // broader than the rule
		{"plc", "sub", "plc/replies/#", true},        // readwrite
		{"plc", "pub", "plc/replies/x", true},
		{"plc", "sub", "ember/v1/d1/reply/plc-1/#", true},    // its own replies
		{"plc", "sub", "ember/v1/d1/reply/plc-1/r1", true},   // its own replies
		{"plc", "sub", "ember/v1/d1/reply/+/#", false},       // everyone's replies
		{"plc", "sub", "ember/v1/d1/reply/scada-1/#", false}, // another's
		{"plc", "pub", "ember/v1/d1/reply/plc-1/r1", false},  // only emberd writes replies
		{"plc", "sub", "#", false},
		{"plc", "sub", "$SYS/#", false},
		{"scada", "sub", "plant/#", true},
		{"scada", "sub", "plant/+/+/reading", true},
		{"scada", "sub", "#", true},
		{"scada", "pub", "plant/line3/press4/cmd", false}, // read only
		{"noacl", "sub", "plant/#", false},
		{"noacl", "pub", "plant/line3/press4/reading", false},
		{"noacl", "sub", "ember/v1/d1/reply/noacl-1/#", true},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.op+" "+tt.topic, func(t *testing.T) {
			c := clients[tt.user]
			var code byte
			switch tt.op {
			case "pub":
				res, err := c.Publish(ctx, &paho5.Publish{Topic: tt.topic, QoS: 1, Payload: []byte("x")})
				if res == nil {
					t.Fatalf("no PUBACK: %v", err)
				}
				code = res.ReasonCode
			case "sub":
				res, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: tt.topic, QoS: 1}}})
				if res == nil || len(res.Reasons) != 1 {
					t.Fatalf("no SUBACK: %v", err)
				}
				code = res.Reasons[0]
			}
			if allowed := code < 0x80; allowed != tt.allowed {
				t.Fatalf("reason code %#x, want allowed=%v", code, tt.allowed)
			}
			if !tt.allowed && code != 0x87 {
				t.Fatalf("refused with %#x, want 0x87 not authorized", code)
			}
		})
	}
}

// TestReplyTopicsOnTheWire is the relay attack on the embedded broker: a
// client allowed only the request topic asks for replies on topics it
// may not publish to. Nothing reaches them (a privileged observer on '#'
// hears nothing there), and the refusal comes on the error topic without
// the request's payload.
func TestReplyTopicsOnTheWire(t *testing.T) {
	tb := startBrokerWith(t, usersYAML(t), "requests: {enabled: true, max_tokens: 32}")
	observed := make(chan string, 1000)
	admin := login(t, tb.addr, "observer", "admin", "admin-pw", observed)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	replies := make(chan string, 100)
	plc := login(t, tb.addr, "plc-1", "plc", "plc-pw", replies)
	if _, err := plc.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "ember/v1/d1/error/infer", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	const secret = "OPEN-VALVE-7"
	tests := []struct {
		name          string
		replyTo       string // in the payload
		responseTopic string // MQTT 5 property
		allowed       bool
		refusal       string
	}{
		{"relay to a PLC command topic", "plant/line3/press4/cmd", "", false, "may not publish there"},
		{"relay by response topic", "", "plant/line3/press4/cmd", false, "may not publish there"},
		{"into ember's own result topic", "ember/v1/d1/result/alarms", "", false, "emberd's own topics"},
		{"loop into the request topic", "ember/v1/d1/infer/tiny", "", false, "emberd's own topics"},
		{"another client's replies", "ember/v1/d1/reply/scada-1/r", "", false, "another client's"},
		{"wildcard", "plc/replies/#", "", false, "wildcard"},
		{"too long", "plc/replies/" + strings.Repeat("a", 600), "", false, "over the limit"},
		{"broker topic", "$SYS/x", "", false, "broker topic"},
		{"leading slash", "/plant/line3/press4/cmd", "", false, "may not publish there"},
		{"own reply topic", "ember/v1/d1/reply/plc-1/r1", "", true, ""},
		{"own ACL", "plc/replies/r2", "", true, ""},
		{"own ACL by response topic", "", "plc/replies/r3", true, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := tb.st.Jobs(store.JobFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]any{"id": fmt.Sprint("r", i), "prompt": secret, "reply_to": tt.replyTo})
			if tt.replyTo == "" {
				body, _ = json.Marshal(map[string]any{"id": fmt.Sprint("r", i), "prompt": secret})
			}
			pub := &paho5.Publish{Topic: "ember/v1/d1/infer/tiny", QoS: 1, Payload: body}
			if tt.responseTopic != "" {
				pub.Properties = &paho5.PublishProperties{ResponseTopic: tt.responseTopic, CorrelationData: []byte("c")}
			}
			if _, err := plc.Publish(ctx, pub); err != nil {
				t.Fatal(err)
			}
			after, err := tb.st.Jobs(store.JobFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if tt.allowed {
				if len(after) != len(before)+1 || !strings.Contains(string(after[0].Request), tt.replyTo+tt.responseTopic) {
					t.Fatalf("no job replying to %s", tt.replyTo+tt.responseTopic)
				}
				return
			}
			if len(after) != len(before) {
				t.Fatal("a refused request became a job")
			}
			select {
			case m := <-replies:
				if !strings.HasPrefix(m, "ember/v1/d1/error/infer ") || !strings.Contains(m, tt.refusal) {
					t.Fatalf("refusal %s does not say %q", m, tt.refusal)
				}
				if strings.Contains(m, secret) {
					t.Fatalf("the refusal echoes the payload: %s", m)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no refusal on the error topic")
			}
		})
	}
	// The observer, allowed everything, heard nothing on the forbidden
	// topics, and never the secret anywhere but the request topic.
	time.Sleep(200 * time.Millisecond)
	for len(observed) > 0 {
		m := <-observed
		topic, payload, _ := strings.Cut(m, " ")
		if strings.HasPrefix(topic, "plant/") || strings.HasPrefix(topic, "ember/v1/d1/result/") || strings.HasPrefix(topic, "$") {
			t.Errorf("a reply reached %s: %s", topic, payload)
		}
		if strings.Contains(payload, secret) && !strings.HasPrefix(topic, "ember/v1/d1/infer/") {
			t.Errorf("the request's payload reached %s", topic)
		}
	}
}

// TestRequestsAreOptIn: with mqtt.requests off (the default) a message on
// the request topic is passed on by the broker and nothing more.
func TestRequestsAreOptIn(t *testing.T) {
	tb := startBrokerWith(t, "", "")
	c := connect(t, tb.addr, "tech")
	if tok := c.Publish("ember/v1/d1/infer/tiny", 1, false, `{"prompt":"hi"}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if js, err := tb.st.Jobs(store.JobFilter{Limit: 10}); err != nil || len(js) != 0 {
		t.Fatalf("jobs %v (%v): the request topic is off", js, err)
	}
}
