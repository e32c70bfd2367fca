package mqtt

import "errors"

// Publisher publishes results to the broker a request came from; it
// implements jobs.Publisher.
type Publisher struct {
	Broker *Broker
	Client *Client
}

// Publish sends to broker "embedded" or "external", or to both when
// broker is empty (requests that came over gRPC).
func (p *Publisher) Publish(broker, t string, payload []byte, qos byte, retain bool, correlation []byte) error {
	var errs []error
	if (broker == "embedded" || broker == "") && p.Broker != nil {
		errs = append(errs, p.Broker.Publish(t, payload, qos, retain, correlation))
	}
	if (broker == "external" || broker == "") && p.Client != nil {
		errs = append(errs, p.Client.Publish(t, payload, qos, retain))
	}
	return errors.Join(errs...)
}
