package uplink

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// errNotSet is the not-found sentinel of flakySettings.
var errNotSet = errors.New("setting not set")

// flakySettings is an in-memory Settings whose first failReads reads fail
// with a transient error, as a bbolt read can.
type flakySettings struct {
	mu        sync.Mutex
	m         map[string][]byte
	failReads int
	writes    map[string]int
}

func (s *flakySettings) Setting(k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failReads > 0 {
		s.failReads--
		return nil, errors.New("bbolt: transient read failure")
	}
	v, ok := s.m[k]
	if !ok {
		return nil, errNotSet
	}
	return v, nil
}

func (s *flakySettings) SetSetting(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	s.writes[k]++
	return nil
}

func TestOutboxID(t *testing.T) {
	const kept = "00112233aabbccdd"
	for _, c := range []struct {
		name      string
		stored    bool
		failReads int
		wantErr   bool
		wantNew   bool
	}{
		{name: "kept", stored: true, wantNew: false},
		{name: "never set", stored: false, wantNew: true},
		{name: "transient read error", stored: true, failReads: 1, wantErr: true},
		{name: "transient read error, none stored", stored: false, failReads: 1, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := &flakySettings{m: map[string][]byte{}, writes: map[string]int{}, failReads: c.failReads}
			if c.stored {
				set.m[outboxIDKey] = []byte(kept)
			}
			u, err := New(Options{URL: "tcp://fake:1", Fleet: "f", Device: "d", Outbox: StoreOutbox{OpenTestStore(t)},
				Settings: set, SettingsNotFound: errNotSet})
			if err != nil {
				t.Fatal(err)
			}
			id, err := u.loadOutboxID()
			if c.wantErr {
				if err == nil {
					t.Fatalf("id %q after a read error, want an error", id)
				}
				if set.writes[outboxIDKey] != 0 {
					t.Fatal("a read error stored a new outbox id")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := set.writes[outboxIDKey] == 1; got != c.wantNew {
				t.Fatalf("new id stored: %v, want %v", got, c.wantNew)
			}
			if !c.wantNew && id != kept {
				t.Fatalf("id %q, want the stored %q", id, kept)
			}
			if c.wantNew && string(set.m[outboxIDKey]) != id {
				t.Fatalf("id %q, stored %q", id, set.m[outboxIDKey])
			}
		})
	}
}

// TestOutboxIDReadRetried: a Run that cannot read its outbox id waits and
// reads again, and sends under the stored id, never a new one.
func TestOutboxIDReadRetried(t *testing.T) {
	const kept = "00112233aabbccdd"
	set := &flakySettings{m: map[string][]byte{outboxIDKey: []byte(kept)}, writes: map[string]int{}, failReads: 3}
	c := newFakeConn(8, true)
	r := newFakeRig(t, Options{Settings: set, SettingsNotFound: errNotSet, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond},
		func(n int) (*fakeConn, error) {
			if n > 1 {
				return nil, errors.New("no more connections")
			}
			return c, nil
		})
	appendInOrder(t, r.st, recs(3, KindResult, 5))
	r.run(t)
	pubs := c.waitPubs(t, 1)
	if env := decode(t, pubs[0]); env.OutboxID != kept {
		t.Fatalf("sent under outbox id %q, want the stored %q", env.OutboxID, kept)
	}
	if set.writes[outboxIDKey] != 0 {
		t.Fatal("a transient read error replaced the outbox id")
	}
}

func TestSettingsNeedNotFound(t *testing.T) {
	_, err := New(Options{URL: "tcp://fake:1", Fleet: "f", Device: "d", Outbox: StoreOutbox{OpenTestStore(t)},
		Settings: &flakySettings{}})
	if err == nil {
		t.Fatal("Settings without SettingsNotFound accepted")
	}
}
