package offsite

import (
	"context"
	"fmt"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// continueNamespace asks the vault, once per start, to let this box's
// tailnet identity write the namespace Config.ContinueNamespace names: a
// replacement box continuing the repository of the box it replaces, with
// the practice's signing key restored from its key backup. Nothing is sent
// before the vault agreed, so the box never starts a namespace of its own.
func (s *Shipper) continueNamespace(ctx context.Context) error {
	from := s.cfg.ContinueNamespace
	if from == "" || s.moved.Load() {
		return nil
	}
	var who struct {
		Namespace string `json:"namespace"`
	}
	if err := s.call(ctx, "GET", "/v1/whoami", nil, nil, &who); err != nil {
		return fmt.Errorf("offsite: ask the vault which namespace this box writes: %w", err)
	}
	if who.Namespace != from {
		st := mustJSON(wire.MoveStatement{From: from, To: who.Namespace, Time: s.now().UTC()})
		req := wire.MoveRequest{Statement: st, Signature: s.cfg.Signer.Sign(wire.MovePurpose, st)}
		if err := s.call(ctx, "POST", "/v1/move", nil, mustJSON(req), nil); err != nil {
			return fmt.Errorf("offsite: continue namespace %s as %s: %w", from, who.Namespace, err)
		}
		s.log.Info("offsite: this box continues the namespace of the box it replaces", "op", "offsite", "namespace", from, "identity", who.Namespace)
	}
	s.moved.Store(true)
	return nil
}
