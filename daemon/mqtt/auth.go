package mqtt

import (
	"bytes"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/topic"
)

// authHook checks logins against bcrypt hashes and topics against each
// user's ACL. Without users, every client is allowed (the default config
// listens on loopback only).
type authHook struct {
	mochi.HookBase
	users map[string]config.MQTTUser
}

func (h *authHook) ID() string { return "ember-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	u, ok := h.users[string(pk.Connect.Username)]
	if !ok {
		// Compare anyway, so a wrong user name takes as long as a wrong
		// password.
		bcrypt.CompareHashAndPassword(dummyHash(), pk.Connect.Password)
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), pk.Connect.Password) == nil
}

func (h *authHook) OnACLCheck(cl *mochi.Client, t string, write bool) bool {
	if len(h.users) == 0 || cl.Net.Inline {
		return true
	}
	u, ok := h.users[string(cl.Properties.Username)]
	if !ok {
		return false
	}
	if len(u.ACL) == 0 {
		return true
	}
	for _, r := range u.ACL {
		if !topic.Match(r.Topic, t) && r.Topic != t {
			continue
		}
		switch r.Access {
		case "readwrite":
			return true
		case "write":
			if write {
				return true
			}
		case "read":
			if !write {
				return true
			}
		}
	}
	return false
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)
	return h
})
