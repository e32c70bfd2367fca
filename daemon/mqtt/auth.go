package mqtt

import (
	"bytes"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/topic"
)

// Reason codes of the embedded broker's refusals at the door. MQTT 3.1.1
// clients get the nearest return code (no reason string).
var (
	// ErrAnonymousRefused refuses a client without credentials (no
	// username, or an empty username and password) when anonymous
	// clients are not allowed.
	ErrAnonymousRefused = packets.Code{Code: packets.ErrNotAuthorized.Code,
		Reason: "anonymous clients are not allowed here: log in with a username and password"}
	// ErrTooManySessions refuses a client that would start a session past
	// mqtt.embedded.limits.max_sessions.
	ErrTooManySessions = packets.Code{Code: packets.ErrQuotaExceeded.Code,
		Reason: "the broker keeps no more sessions (mqtt.embedded.limits.max_sessions)"}
)

// authHook admits clients and checks their topics.
//
//   - Credentials: a client with no username, or an empty username and
//     an empty password (what a client "configured for an anonymous
//     broker" sends, and what the spec and mosquitto allow), is
//     anonymous. Anonymous clients are refused with ErrAnonymousRefused
//     unless allowed (no users on a loopback listener, or
//     allow_anonymous). Everyone else must match a user's bcrypt hash.
//   - Topics: without users every topic is open. With users, a user may
//     use only what its ACL grants (deny by default), and anonymous
//     clients nothing; every client may also read its own reply topics,
//     ember/v1/<device>/reply/<client id>/…, which only emberd writes.
//
// emberd's own inline clients skip the checks: what they publish on
// behalf of a requester is checked before (jobs.Intake's reply rules).
type authHook struct {
	mochi.HookBase
	srv       *mochi.Server
	users     map[string]config.MQTTUser
	anonymous bool
	deviceID  string
	// dummy is compared against for an unknown user, so a wrong user name
	// takes as long as a wrong password: a hash at the users' cost.
	dummy []byte
}

func newAuthHook(srv *mochi.Server, cfg config.Embedded, deviceID string) *authHook {
	users := map[string]config.MQTTUser{}
	for _, u := range cfg.Users {
		users[u.Username] = u
	}
	// Config validation refuses an anonymous broker on a listener that
	// is not loopback-only without allow_anonymous, so no users here
	// means anonymous is intended.
	h := &authHook{srv: srv, users: users, anonymous: len(users) == 0 || cfg.AllowAnonymous, deviceID: deviceID}
	if len(cfg.Users) > 0 {
		cost, err := bcrypt.Cost([]byte(cfg.Users[0].PasswordHash))
		if err != nil {
			cost = bcrypt.DefaultCost
		}
		h.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password"), cost)
	}
	return h
}

func (h *authHook) ID() string { return "ember-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPacketRead, mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

// OnPacketRead accepts an empty password. MQTT 3.1.1 and 5 allow a
// password of zero bytes, mosquitto accepts it, and Sparkplug edge nodes
// configured for an anonymous broker send one; mochi refuses it as a
// protocol error. Without a password the login means the same.
func (h *authHook) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	return pk, nil
}

// isAnonymous reports whether a CONNECT carries no credentials.
func isAnonymous(pk packets.Packet) bool {
	return len(pk.Connect.Username) == 0 && len(pk.Connect.Password) == 0
}

// OnConnect refuses anonymous clients, when they are not allowed, with a
// reason of their own: "not authorized", not "bad username or password",
// so the operator of a misconfigured edge node sees what to change.
func (h *authHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if h.anonymous || !isAnonymous(pk) {
		return nil
	}
	return refuseConnect(h.srv, cl, ErrAnonymousRefused, packets.Err3NotAuthorized)
}

// refuseConnect sends a refusing CONNACK (v3: the MQTT 3.1.1 code) and
// returns the error that ends the connection.
func refuseConnect(srv *mochi.Server, cl *mochi.Client, v5, v3 packets.Code) error {
	code := v5
	if cl.Properties.ProtocolVersion < 5 {
		code = v3
	}
	_ = srv.SendConnack(cl, code, false, nil)
	return v5
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if isAnonymous(pk) {
		return h.anonymous
	}
	u, ok := h.users[string(pk.Connect.Username)]
	if !ok {
		// Compare anyway, so a wrong user name takes as long as a wrong
		// password.
		bcrypt.CompareHashAndPassword(h.dummy, pk.Connect.Password)
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), pk.Connect.Password) == nil
}

// OnACLCheck decides a publish (write) to topic name t or a subscription
// (read) to filter t, and each delivery (read) of a topic name.
func (h *authHook) OnACLCheck(cl *mochi.Client, t string, write bool) bool {
	if cl.Net.Inline || len(h.users) == 0 {
		return true
	}
	if !write && h.ownReplies(cl.ID, t) {
		return true
	}
	u, ok := h.users[string(cl.Properties.Username)]
	if !ok {
		return false // anonymous next to users: deny by default
	}
	return allows(u.ACL, t, write)
}

// ownReplies reports whether filter or name t lies within the client's
// reply topics. A client id that is not a single topic level has none.
func (h *authHook) ownReplies(clientID, t string) bool {
	if clientID == "" || strings.ContainsAny(clientID, "/+#") {
		return false
	}
	return strings.HasPrefix(t, topic.ReplyPrefix(h.deviceID, clientID))
}

// mayPublish reports whether cl could publish to topic name t itself.
func (h *authHook) mayPublish(cl *mochi.Client, t string) bool {
	return h.OnACLCheck(cl, t, true)
}

// allows applies an ACL, deny by default: t must lie within a rule's
// filter (for a subscription filter: every topic it matches must) with
// the access asked for.
func allows(acl []config.ACLRule, t string, write bool) bool {
	for _, r := range acl {
		// Match reads t's wildcards as literal levels: a rule's '+' or '#'
		// covers them, a literal level does not, so a filter passes only
		// when the rule's filter contains it.
		if r.Topic != t && !topic.Match(r.Topic, t) {
			continue
		}
		switch {
		case r.Access == "readwrite", r.Access == "write" && write, r.Access == "read" && !write:
			return true
		}
	}
	return false
}
