# clinicbox: the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
PKGS    ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 60m

.PHONY: all build test setup demo bench torture soak image image-amd64 update smoke smoke-pi vet

all: build

setup:
	./.ci/setup

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# The demo: a throwaway PostgreSQL with a clinic workload, backed up live
# into an encrypted repository under _work/demo, verified and drill-restored.
# Ctrl-C stops it and removes the database.
demo: setup
	$(GO) build -o _work/bin/clinicctl ./cmd/clinicctl
	./_work/bin/clinicctl demo --dir _work/demo

# Runs every test, installing what the integration tests need first.
test: setup
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) $(PKGS)

# The gokrazy images that gokr-packer.yml describes, built from config.json
# with the update password from $CLINICBOX_UPDATE_PASSWORD or .update-password.
# PERM=DIR puts DIR's contents onto the image's /perm (clinicbox/settings.json
# and the secret files it names), so the box starts configured.
image:
	$(GO) run ./cmd/clinicimage build $(if $(PERM),-perm $(PERM)) pi

# Builds the Pi image again and installs it on the running box over the
# network (BOX=HOST[:PORT], default config.json's Hostname); /perm is kept.
update:
	$(GO) run ./cmd/clinicimage update $(if $(BOX),-addr $(BOX)) pi

image-amd64:
	$(GO) run ./cmd/clinicimage build amd64

# Builds the amd64 image, boots it under qemu, backs up a hot-plugged USB
# drive into it and verifies and restores that drive on the host.
smoke: setup
	$(GO) run ./cmd/clinicimage smoke

# Boots the Pi image on qemu's emulated Raspberry Pi 3B (software emulation,
# slow) and runs the smoke's steps there, but for the update over the
# network; see gokr-packer.yml's smokepi.* settings.
smoke-pi: setup
	$(GO) run ./cmd/clinicimage smoke-pi

# Measures clinicctl against pg_basebackup and pg_receivewal on about 1 GB of
# pgbench data and a 2 GB clinic dataset, the box's drill against clinicctl
# drill, the offsite week and the vault at scale, and writes bench/RESULTS.md.
# The base backup and backlog sections take about 10 minutes on 2 cores; the
# drill about 25, the offsite week over an hour. Needs root (loop devices).
# BENCH passes flags, e.g. make bench BENCH='-only base,backlog -drive-mbps 30'.
bench:
	$(GO) run ./cmd/clinicbench -out bench/RESULTS.md $(BENCH)

# 100 rounds of random faults (SIGKILL of clinicctl and of the service at
# random moments, including during an eject, a swap and the nightly backup
# on the service's controlled clock; power cuts; pulled drives), shared
# among the fault suite's round tests; every round checks that nothing was
# lost and nothing is marked good that is not. Writes docs/TORTURE.md.
# Needs root for loop devices. ROUNDS=N runs a shorter or longer one.
ROUNDS ?= 100
torture:
	CLINICBOX_TORTURE_ROUNDS=$(ROUNDS) CLINICBOX_TORTURE_OUT=$(CURDIR)/docs/TORTURE.md $(GO) test -race -count=1 -timeout 90m -v \
		-run '^(TestSIGKILL|TestPowerLoss|TestDrivePulledMidWrite|TestSIGKILLService|TestSIGKILLServiceOnClock)$$' ./appliance/fault/

# A month of clinic life: cmd/clinicbox on its controlled clock for DAYS
# simulated days (three drives swapped every workday, nightly backups, a
# clinic workload, a vault on an in-process tailnet), sampling its memory,
# goroutines, threads, open files, state directory, custody log, drive use
# and WAL lag after every day. Writes bench/SOAK.md and bench/soak.svg.
# Needs root for loop devices.
DAYS ?= 30
soak:
	CLINICBOX_SOAK_DAYS=$(DAYS) CLINICBOX_SOAK_OUT=$(CURDIR)/bench $(GO) test -tags soak -count=1 -timeout 150m -v -run '^TestSoak$$' ./appliance/fault/
