# Deform — the two entry points are `make demo` (main job) and `make test` (whole suite).
# Both install the Debian -dev libraries Deform links against, only when they are missing;
# `make test` also installs Chromium for the report tests.

DEB_PACKAGES := libopenblas-dev liblapacke-dev zlib1g-dev libpng-dev libturbojpeg0-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE_TEST_FLAGS := -c release -Xswiftc -enable-testing

.PHONY: deps test-deps demo test bench build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	swift build -c release --product deform

# The main job: generate an example non-rigid sequence (2D tracks + 3D ground truth), reconstruct
# it with PAUL and print the normalized 3D error and where the results are.
demo: build
	@mkdir -p runs/example
	.build/release/deform nrsfm example -o runs/example/tracks.npz
	.build/release/deform nrsfm fit runs/example/tracks.npz --iterations 3000 -o runs/example/paul --overwrite

bench: build
	.build/release/deform bench

# The report tests open the generated HTML in headless Chromium (software WebGL).
test-deps: deps
	@if ! command -v chromium >/dev/null 2>&1 && ! dpkg -s chromium >/dev/null 2>&1; then \
	  echo "installing: chromium (for the browser tests of deform view)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; \
	fi

test: test-deps
	swift test $(RELEASE_TEST_FLAGS)
