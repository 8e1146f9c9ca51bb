// Command soak loads a Slipway registry (or any OCI distribution registry with Docker
// token authentication) with concurrent pullers and pushers for a fixed time, verifying
// every byte it reads back, and prints latency percentiles per operation, rates and
// errors. It exits 1 if any error happened (2 on bad usage or a failed setup).
//
//	soak -registry 127.0.0.1:5000 -user soak -password ... -pullers 200 -pushers 50 -duration 10m
//
// Setup (before the clock starts): -repos images, soak/pull-I:v1, each a config and 2 or 3
// layers. Pullers then loop: a random image's manifest by tag (digest checked against the
// Docker-Content-Digest header and the pushed manifest), then its config and every layer,
// each streamed through sha256. Pushers loop: a new image into their own repository
// soak/push-K (each blob POST, one or two PATCHes, PUT with the digest, then HEAD), its
// manifest PUT under a new tag, then read back by tag. Layers are tars of one file of
// random bytes, their sizes log-uniform between the bounds. Standard library only.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

type config struct {
	registry, user, password, label, startedFile   string
	pullers, pushers, repos, pushLayers, setupJobs int
	duration, warmup, timeout, progress            time.Duration
	layerMin, layerMax, pushMin, pushMax           int
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// image is what was pushed: its manifest's bytes and digest and its blobs (config first).
type image struct {
	repo, tag, digest string
	manifest          []byte
	blobs             []descriptor
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// worker is one goroutine's state: its random sources and copy buffer.
type worker struct {
	r     *registry
	st    *stats
	cfg   *config
	rng   *rand.Rand
	bytes *rand.ChaCha8
	buf   []byte
}

func newWorker(r *registry, st *stats, cfg *config) *worker {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic(err)
	}
	other := seed
	other[0] ^= 0xff
	return &worker{
		r: r, st: st, cfg: cfg,
		rng:   rand.New(rand.NewChaCha8(seed)),
		bytes: rand.NewChaCha8(other),
		buf:   make([]byte, 64<<10),
	}
}

// logUniform: a size between lo and hi, uniform in its logarithm (many small blobs, a
// few large ones, as in real images).
func (w *worker) logUniform(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return int(math.Exp(math.Log(float64(lo)) + w.rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
}

// tarLayer: a tar holding one file of n random bytes.
func (w *worker) tarLayer(n int) []byte {
	content := make([]byte, n)
	_, _ = w.bytes.Read(content)
	var b bytes.Buffer
	b.Grow(n + 2048)
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: "soak/data.bin", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(content)
	_ = tw.Close()
	return b.Bytes()
}

// newImage builds an image of `layers` layers of sizes in [lo, hi]: its blobs (config
// first) and manifest.
func (w *worker) newImage(repo, tag string, layers, lo, hi int) (*image, [][]byte) {
	img := &image{repo: repo, tag: tag}
	var data [][]byte
	var diffIDs []string
	var descs []descriptor
	for range layers {
		layer := w.tarLayer(w.logUniform(lo, hi))
		d := descriptor{MediaType: mediaLayer, Digest: digestOf(layer), Size: int64(len(layer))}
		descs = append(descs, d)
		diffIDs = append(diffIDs, d.Digest) // uncompressed layers: the diff id is the digest
		data = append(data, layer)
	}
	cfgJSON, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Now().UTC().Format(time.RFC3339Nano),
		"config":       map[string]any{"Labels": map[string]string{"slipway.soak": repo + ":" + tag}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cfgDesc := descriptor{MediaType: mediaConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))}
	img.blobs = append([]descriptor{cfgDesc}, descs...)
	data = append([][]byte{cfgJSON}, data...)
	img.manifest, _ = json.Marshal(manifest{SchemaVersion: 2, MediaType: mediaManifest, Config: cfgDesc, Layers: descs})
	img.digest = digestOf(img.manifest)
	return img, data
}

// pushBlob: POST an upload, PATCH the bytes in one or two chunks (Content-Range), PUT
// with the digest, then HEAD the blob.
func (w *worker) pushBlob(ctx context.Context, repo string, desc descriptor, data []byte) error {
	hint := "push:" + repo
	start := time.Now()
	resp, err := w.r.do(ctx, http.MethodPost, w.r.url("/v2/%s/blobs/uploads/", repo), nil, nil, hint)
	if err != nil {
		return err
	}
	location, err := w.answer(resp, "upload POST", http.StatusAccepted)
	if err != nil {
		return err
	}
	chunks := [][2]int{{0, len(data)}}
	if len(data) >= 2048 && w.rng.IntN(2) == 0 {
		cut := 1024 + w.rng.IntN(len(data)-2048)
		chunks = [][2]int{{0, cut}, {cut, len(data)}}
	}
	for _, c := range chunks {
		header := http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", c[0], c[1]-1)},
		}
		resp, err := w.r.do(ctx, http.MethodPatch, location, data[c[0]:c[1]], header, hint)
		if err != nil {
			return err
		}
		if got := resp.Header.Get("Range"); resp.StatusCode == http.StatusAccepted && got != fmt.Sprintf("0-%d", c[1]-1) {
			resp.Body.Close()
			return failure("upload PATCH: wrong Range in the answer", fmt.Sprintf("%q after bytes 0-%d", got, c[1]-1))
		}
		if location, err = w.answer(resp, "upload PATCH", http.StatusAccepted); err != nil {
			return err
		}
	}
	u, err := w.r.resolve(location)
	if err != nil {
		return failure("upload PUT: bad Location", location)
	}
	q := u.Query()
	q.Set("digest", desc.Digest)
	u.RawQuery = q.Encode()
	resp, err = w.r.do(ctx, http.MethodPut, u.String(), nil, nil, hint)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode == http.StatusCreated && got != desc.Digest {
		resp.Body.Close()
		return failure("upload PUT: wrong Docker-Content-Digest", got+" for "+desc.Digest)
	}
	if _, err := w.answer(resp, "upload PUT", http.StatusCreated); err != nil {
		return err
	}
	w.st.record(opBlobPush, start)
	w.st.bytesPushed.Add(int64(len(data)))

	start = time.Now()
	resp, err = w.r.do(ctx, http.MethodHead, w.r.url("/v2/%s/blobs/%s", repo, desc.Digest), nil, nil, hint)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return failure("blob HEAD: wrong Content-Length", fmt.Sprintf("%d, pushed %d", resp.ContentLength, desc.Size))
	}
	if _, err := w.answer(resp, "blob HEAD", http.StatusOK); err != nil {
		return err
	}
	w.st.record(opBlobHead, start)
	return nil
}

// answer checks the status, drains and closes the body, and resolves Location.
func (w *worker) answer(resp *http.Response, what string, want int) (string, error) {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != want {
		return "", statusFailure(what, resp, body)
	}
	location := resp.Header.Get("Location")
	if location == "" {
		return "", nil
	}
	u, err := w.r.resolve(location)
	if err != nil {
		return "", failure(what+": bad Location", location)
	}
	return u.String(), nil
}

// getManifest GETs a manifest by tag and checks it is img's, byte for byte.
func (w *worker) getManifest(ctx context.Context, img *image, hint string, o op) error {
	start := time.Now()
	resp, err := w.r.do(ctx, http.MethodGet, w.r.url("/v2/%s/manifests/%s", img.repo, img.tag), nil,
		http.Header{"Accept": {mediaManifest}}, hint)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	what := "manifest GET"
	if o == opManifestGetBack {
		what = "manifest GET after push"
	}
	if err != nil {
		return failure(what+": reading the body", err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return statusFailure(what, resp, body)
	}
	w.st.record(o, start)
	got := digestOf(body)
	if header := resp.Header.Get("Docker-Content-Digest"); header != got {
		return failure(what+": Docker-Content-Digest is not the body's digest", header+" for a body of "+got)
	}
	if got != img.digest {
		return failure(what+": not the manifest pushed", fmt.Sprintf("%s:%s is %s, pushed %s", img.repo, img.tag, got, img.digest))
	}
	return nil
}

// getBlob GETs a blob, streaming it through sha256, and checks its size and digest.
func (w *worker) getBlob(ctx context.Context, repo string, desc descriptor, hint string) error {
	start := time.Now()
	resp, err := w.r.do(ctx, http.MethodGet, w.r.url("/v2/%s/blobs/%s", repo, desc.Digest), nil, nil, hint)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return statusFailure("blob GET", resp, body)
	}
	w.st.record(opBlobFirstByte, start)
	h := sha256.New()
	n, err := io.CopyBuffer(h, resp.Body, w.buf)
	if err != nil {
		return failure("blob GET: reading the body", err.Error())
	}
	if n != desc.Size {
		return failure("blob GET: wrong size", fmt.Sprintf("%s: %d bytes, pushed %d", desc.Digest, n, desc.Size))
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != desc.Digest {
		return failure("blob GET: DIGEST MISMATCH", fmt.Sprintf("%s/%s hashes to %s", repo, desc.Digest, got))
	}
	w.st.record(opBlobGet, start)
	w.st.blobsVerified.Add(1)
	w.st.bytesVerified.Add(n)
	return nil
}

func (w *worker) pull(ctx context.Context, img *image) error {
	hint := "pull:" + img.repo
	if err := w.getManifest(ctx, img, hint, opManifestGet); err != nil {
		return err
	}
	for _, desc := range img.blobs {
		if err := w.getBlob(ctx, img.repo, desc, hint); err != nil {
			return err
		}
	}
	w.st.pulls.Add(1)
	return nil
}

// push pushes a new image (blobs, then the manifest) and reads its manifest back.
func (w *worker) push(ctx context.Context, repo, tag string, layers, lo, hi int) (*image, error) {
	img, data := w.newImage(repo, tag, layers, lo, hi)
	for i, desc := range img.blobs {
		if err := w.pushBlob(ctx, repo, desc, data[i]); err != nil {
			return nil, err
		}
	}
	hint := "push:" + repo
	start := time.Now()
	resp, err := w.r.do(ctx, http.MethodPut, w.r.url("/v2/%s/manifests/%s", repo, tag), img.manifest,
		http.Header{"Content-Type": {mediaManifest}}, hint)
	if err != nil {
		return nil, err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode == http.StatusCreated && got != img.digest {
		resp.Body.Close()
		return nil, failure("manifest PUT: wrong Docker-Content-Digest", got+" for "+img.digest)
	}
	if _, err := w.answer(resp, "manifest PUT", http.StatusCreated); err != nil {
		return nil, err
	}
	w.st.record(opManifestPut, start)
	if err := w.getManifest(ctx, img, hint, opManifestGetBack); err != nil {
		return nil, err
	}
	return img, nil
}

func parseConfig() (config, error) {
	var c config
	flag.StringVar(&c.registry, "registry", "127.0.0.1:5000", "registry host:port (plain HTTP)")
	flag.StringVar(&c.user, "user", "soak", "user name for the token service (its namespace holds the repositories)")
	flag.StringVar(&c.password, "password", "", "password (default: $SOAK_PASSWORD)")
	flag.StringVar(&c.label, "label", "soak", "name of the run in the summary")
	flag.StringVar(&c.startedFile, "started-file", "", "file created when the clock starts (after setup)")
	flag.IntVar(&c.pullers, "pullers", 200, "concurrent pullers")
	flag.IntVar(&c.pushers, "pushers", 50, "concurrent pushers")
	flag.IntVar(&c.repos, "repos", 20, "images pushed at setup for the pullers (one repository each)")
	flag.IntVar(&c.pushLayers, "push-layers", 2, "layers of each image a pusher pushes")
	flag.IntVar(&c.setupJobs, "setup-jobs", 4, "images pushed at once during setup")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the load runs, warm-up included")
	flag.DurationVar(&c.warmup, "warmup", 60*time.Second, "first part of the run not measured")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "time limit of one image pull or push")
	flag.DurationVar(&c.progress, "progress", 10*time.Second, "interval of progress lines on stderr (0: none)")
	size := func(p *int, name string, def int, usage string) {
		*p = def
		flag.Func(name, usage+" (bytes, or with a K/M suffix; default "+strconv.Itoa(def)+")", func(s string) error {
			n, err := parseSize(s)
			*p = n
			return err
		})
	}
	size(&c.layerMin, "layer-min", 4<<10, "smallest setup layer")
	size(&c.layerMax, "layer-max", 4<<20, "largest setup layer")
	size(&c.pushMin, "push-min", 1<<10, "smallest pushed layer")
	size(&c.pushMax, "push-max", 1<<20, "largest pushed layer")
	flag.Parse()
	if c.password == "" {
		c.password = os.Getenv("SOAK_PASSWORD")
	}
	switch {
	case flag.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", flag.Args())
	case c.password == "":
		return c, fmt.Errorf("no password: -password or SOAK_PASSWORD")
	case c.pullers < 0 || c.pushers < 0 || c.pullers+c.pushers == 0:
		return c, fmt.Errorf("need pullers or pushers")
	case c.repos < 1 || c.pushLayers < 1 || c.setupJobs < 1:
		return c, fmt.Errorf("-repos, -push-layers and -setup-jobs must be at least 1")
	case c.warmup >= c.duration:
		return c, fmt.Errorf("-warmup (%s) must be shorter than -duration (%s)", c.warmup, c.duration)
	case c.layerMin < 1 || c.layerMax < c.layerMin || c.pushMin < 1 || c.pushMax < c.pushMin:
		return c, fmt.Errorf("bad layer size bounds")
	}
	return c, nil
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

// setup pushes the images the pullers read, cfg.setupJobs at a time.
func setup(r *registry, st *stats, cfg *config) ([]*image, error) {
	images := make([]*image, cfg.repos)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range cfg.setupJobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(r, st, cfg)
			for i := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*cfg.timeout)
				img, err := w.push(ctx, fmt.Sprintf("%s/pull-%d", cfg.user, i), "v1", 2+w.rng.IntN(2), cfg.layerMin, cfg.layerMax)
				cancel()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				images[i] = img
				mu.Unlock()
			}
		}()
	}
	for i := range cfg.repos {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return images, firstErr
}

func main() {
	cfg, err := parseConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	st := newStats()
	r, err := newRegistry(cfg.registry, cfg.user, cfg.password, cfg.pullers+cfg.pushers+cfg.setupJobs+16, cfg.timeout, st)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}

	setupStart := time.Now()
	images, err := setup(r, st, &cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: setup failed: %v\n", err)
		os.Exit(2)
	}
	var setupBytes int64
	for _, img := range images {
		for _, d := range img.blobs {
			setupBytes += d.Size
		}
	}
	fmt.Fprintf(os.Stderr, "soak: setup pushed %d images (%.1f MiB of blobs) in %.1fs; %d pullers and %d pushers for %s\n",
		len(images), float64(setupBytes)/(1<<20), time.Since(setupStart).Seconds(), cfg.pullers, cfg.pushers, cfg.duration)

	var stop atomic.Bool
	start := time.Now()
	st.measureFrom.Store(start.Add(cfg.warmup).UnixNano())
	if cfg.startedFile != "" {
		if err := os.WriteFile(cfg.startedFile, []byte(start.Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(2)
		}
	}

	var wg sync.WaitGroup
	for range cfg.pullers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(r, st, &cfg)
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
				err := w.pull(ctx, images[w.rng.IntN(len(images))])
				cancel()
				if err != nil {
					st.fail(err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for k := range cfg.pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(r, st, &cfg)
			repo := fmt.Sprintf("%s/push-%d", cfg.user, k)
			for i := 0; !stop.Load(); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
				_, err := w.push(ctx, repo, fmt.Sprintf("i%d", i), cfg.pushLayers, cfg.pushMin, cfg.pushMax)
				cancel()
				if err != nil {
					st.fail(err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				st.pushes.Add(1)
			}
		}()
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	warmTimer := time.NewTimer(cfg.warmup)
	endTimer := time.NewTimer(cfg.duration)
	var ticks <-chan time.Time
	if cfg.progress > 0 {
		t := time.NewTicker(cfg.progress)
		defer t.Stop()
		ticks = t.C
	}
	warm := st.snapshot()
	var end counters
	interrupted := false
loop:
	for {
		select {
		case <-warmTimer.C:
			warm = st.snapshot()
			fmt.Fprintf(os.Stderr, "soak: %4.0fs warm-up over, measuring\n", time.Since(start).Seconds())
		case <-ticks:
			s := st.snapshot()
			fmt.Fprintf(os.Stderr, "soak: %4.0fs requests %d, pulls %d, pushes %d, %.0f MiB verified, errors %d\n",
				time.Since(start).Seconds(), s.requests, s.pulls, s.pushes, float64(s.bytes)/(1<<20), s.errors)
		case <-endTimer.C:
			end = st.snapshot()
			break loop
		case sig := <-signals:
			end = st.snapshot()
			interrupted = true
			fmt.Fprintf(os.Stderr, "soak: %s: stopping early\n", sig)
			break loop
		}
	}
	stop.Store(true)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(cfg.timeout + 30*time.Second):
		st.fail(failure("workers still busy long after the end", "a pull or push did not finish within -timeout"))
	}
	if interrupted {
		st.fail(failure("interrupted", "the run was stopped before its end"))
	}
	if warm.at.Before(start.Add(cfg.warmup)) {
		warm = end // the run ended during warm-up: nothing measured
	}
	st.summary(os.Stdout, cfg.label, cfg, warm, end)
	if st.errTotal.Load() > 0 {
		os.Exit(1)
	}
}
