# Deform — the two entry points are `make demo` (main job) and `make test` (whole suite).
# Both install the Debian -dev libraries Deform links against, only when they are missing.

DEB_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE_TEST_FLAGS := -c release -Xswiftc -enable-testing

.PHONY: deps demo test bench build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	swift build -c release --product deform

demo: build
	.build/release/deform bench

bench: demo

test: deps
	swift test $(RELEASE_TEST_FLAGS)
