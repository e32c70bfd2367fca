package collectortest

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/ember-edge/ember/sync/collector"
	"github.com/ember-edge/ember/sync/collector/pgsink"
)

// Collectors are n collectors of one shared-subscription group, each
// with its own pgsink pool, as n `emberctl collector run` processes
// would be.
type Collectors struct {
	C      []*collector.Collector
	sinks  []*pgsink.Sink
	cancel context.CancelFunc
	done   chan error
}

// StartCollectors starts n collectors of group on the broker at url for
// fleet, storing into db, and returns once every one is subscribed
// (each has received a probe message through the shared subscription).
func StartCollectors(url, fleet, group, db string, n int) (*Collectors, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cs := &Collectors{cancel: cancel, done: make(chan error, n)}
	for i := range n {
		s, err := pgsink.Open(ctx, db)
		if err != nil {
			cs.Stop()
			return nil, err
		}
		cs.sinks = append(cs.sinks, s)
		c, err := collector.New(collector.Options{URL: url, Fleet: fleet, Group: group,
			ClientID: fmt.Sprintf("%s-%s-%d", fleet, group, i), Sink: s})
		if err != nil {
			cs.Stop()
			return nil, err
		}
		cs.C = append(cs.C, c)
		go func() { cs.done <- c.Run(ctx) }()
	}
	if err := cs.waitSubscribed(url, fleet); err != nil {
		cs.Stop()
		return nil, err
	}
	return cs, nil
}

// waitSubscribed publishes fleet-update reports of a probe device until
// every collector has taken at least one off its shared subscription:
// records published before then would find no subscriber and be
// dropped by the broker.
func (cs *Collectors) waitSubscribed(url, fleet string) error {
	cli := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("probe-%d", time.Now().UnixNano())))
	if tok := cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("probe: connect: %v", tok.Error())
	}
	defer cli.Disconnect(0)
	deadline := time.Now().Add(30 * time.Second)
	for !cs.allSeen() {
		if time.Now().After(deadline) {
			return errors.New("collectors did not subscribe within 30s")
		}
		tok := cli.Publish("fleet/v1/"+fleet+"/probe/reported", 1, false, `{"fleet":"`+fleet+`"}`)
		tok.WaitTimeout(5 * time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (cs *Collectors) allSeen() bool {
	for _, c := range cs.C {
		if c.Stats().Messages == 0 {
			return false
		}
	}
	return true
}

// Stats sums the collectors' counters.
func (cs *Collectors) Stats() collector.Stats {
	var t collector.Stats
	for _, c := range cs.C {
		s := c.Stats()
		t.Messages += s.Messages
		t.Rejected += s.Rejected
		t.Records += s.Records
		t.Batches += s.Batches
		t.StoreErrors += s.StoreErrors
		t.Acks += s.Acks
	}
	return t
}

// Stop ends the collectors and closes their pools.
func (cs *Collectors) Stop() {
	cs.cancel()
	for range cs.C {
		<-cs.done
	}
	for _, s := range cs.sinks {
		s.Close()
	}
	cs.C, cs.sinks = nil, nil
}
