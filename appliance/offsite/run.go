package offsite

import (
	"context"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// Run streams WAL to the vault until ctx is cancelled (and finishes an
// upload the spool holds), reconnecting after
// every failure (the link, the vault or the database going away) with a
// growing pause. Each new session asks the vault where its durable WAL
// ends and continues there; the slot keeps the WAL in between. Run returns
// nil when ctx is cancelled.
func (s *Shipper) Run(ctx context.Context) error {
	s.runCtx.Store(&ctx)
	go s.poll(ctx)
	go func() {
		// An incremental backup left in the spool by a restart or a power
		// cut goes on uploading without waiting for the next backup.
		if err := s.ResumeSpool(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("offsite: resuming the spooled base backup", "op", "offsite", "err", err)
		}
	}()
	pause := time.Second
	for ctx.Err() == nil {
		start := s.now()
		err := s.session(ctx)
		s.setConnected(false)
		if ctx.Err() != nil {
			break
		}
		s.setError(err)
		s.log.Warn("offsite stream stopped", "op", "offsite", "slot", s.cfg.Slot, "err", err, "retry_in", pause)
		if s.now().Sub(start) > time.Minute {
			pause = time.Second
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		pause = min(2*pause, time.Minute)
	}
	return nil
}

// session is one connection to the database and the vault.
func (s *Shipper) session(ctx context.Context) error {
	if err := s.continueNamespace(ctx); err != nil {
		return err
	}
	conn, err := postgres.Connect(ctx, s.cfg.DB)
	if err != nil {
		return err
	}
	defer conn.Close()
	info := archive.Info{Format: archive.FormatVersion, SystemID: conn.System.ID, SegmentSize: conn.System.SegmentSize,
		ServerVersion: conn.System.ServerVersion, Recipients: s.cfg.Recipients, Signer: s.cfg.Signer.Public().String()}
	if err := s.call(ctx, "PUT", "/v1/repo", nil, mustJSON(info), nil); err != nil {
		return err
	}
	sealer, err := archive.NewWALSealer(info, s.cfg.Signer)
	if err != nil {
		return err
	}
	// Requests outlive the cancellation of ctx by their own time limit, so
	// a stopping stream still sends and reports its last flush.
	k := &sink{s: s, ctx: context.WithoutCancel(ctx), stop: ctx, sealer: sealer, size: info.SegmentSize}
	s.setConnected(true)
	s.setError(nil)
	return conn.StreamWAL(ctx, k, postgres.StreamOptions{
		Slot:          s.cfg.Slot,
		FlushInterval: s.cfg.FlushInterval,
		// Report each acknowledgement promptly: the slot is what keeps
		// the server's disk from filling, and its flush position is only
		// what the vault fsynced.
		StatusInterval: s.cfg.FlushInterval,
		Log:            s.log,
	})
}

// poll reads the server's WAL position for the lag and the backlog.
func (s *Shipper) poll(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	r := &postgres.PositionReader{URL: s.cfg.DB}
	defer r.Close()
	for {
		if lsn, err := r.Read(ctx); err == nil {
			s.serverAt(lsn)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Shipper) serverAt(lsn archive.LSN) {
	s.lag.seen(lsn, s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.BacklogBytes = max(0, int64(lsn)-int64(s.st.Durable))
}
