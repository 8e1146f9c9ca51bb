package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type op int

const (
	opManifestGet op = iota
	opBlobFirstByte
	opBlobGet
	opBlobPush
	opBlobHead
	opManifestPut
	opManifestGetBack
	opToken
	nOps
)

var opNames = [nOps]string{
	opManifestGet:     "manifest GET (puller, by tag)",
	opBlobFirstByte:   "blob GET, to first byte",
	opBlobGet:         "blob GET, whole body verified",
	opBlobPush:        "blob push (POST+PATCH+PUT)",
	opBlobHead:        "blob HEAD (after push)",
	opManifestPut:     "manifest PUT",
	opManifestGetBack: "manifest GET (after push)",
	opToken:           "token GET (/auth/token)",
}

// stats holds every latency sample taken after the warm-up (all of them: a 10-minute
// soak takes a few million, tens of MB) and the counters.
type stats struct {
	measureFrom atomic.Int64 // unix nanoseconds; samples of operations begun before are dropped
	mu          [nOps]sync.Mutex
	samples     [nOps][]time.Duration

	requests      atomic.Int64 // HTTP requests sent, 401s and token GETs included
	challenges    atomic.Int64 // 401s answered with a Bearer challenge
	refused       atomic.Int64 // of those, answers to a request that carried a token
	tokens        atomic.Int64 // tokens fetched
	pulls         atomic.Int64 // images pulled and verified
	pushes        atomic.Int64 // images pushed and read back
	blobsVerified atomic.Int64
	bytesVerified atomic.Int64 // blob bytes read back and hashed
	bytesPushed   atomic.Int64

	errMu      sync.Mutex
	errTotal   atomic.Int64
	errReasons map[string]*errorReason
	errOrder   []string
	errOther   int64 // errors whose reason came after the first maxReasons
}

type errorReason struct {
	count  int64
	detail string
}

const maxReasons = 20

func newStats() *stats {
	st := &stats{errReasons: map[string]*errorReason{}}
	st.measureFrom.Store(time.Now().Add(100 * 365 * 24 * time.Hour).UnixNano())
	return st
}

// record takes the latency of an operation begun at start, if it began after warm-up.
func (st *stats) record(o op, start time.Time) {
	if start.UnixNano() < st.measureFrom.Load() {
		return
	}
	d := time.Since(start)
	st.mu[o].Lock()
	st.samples[o] = append(st.samples[o], d)
	st.mu[o].Unlock()
}

// fail counts an error under its reason.
func (st *stats) fail(err error) {
	st.errTotal.Add(1)
	var se *soakError
	if !errors.As(err, &se) {
		se = &soakError{reason: "other", detail: err.Error()}
	}
	st.errMu.Lock()
	defer st.errMu.Unlock()
	if r, ok := st.errReasons[se.reason]; ok {
		r.count++
		return
	}
	if len(st.errOrder) >= maxReasons {
		st.errOther++
		return
	}
	st.errReasons[se.reason] = &errorReason{count: 1, detail: se.detail}
	st.errOrder = append(st.errOrder, se.reason)
}

// counters is a snapshot of the counters, taken at the end of the warm-up and at the end.
type counters struct {
	at                                          time.Time
	requests, pulls, pushes, blobs, bytes, sent int64
	errors                                      int64
}

func (st *stats) snapshot() counters {
	return counters{
		at:       time.Now(),
		requests: st.requests.Load(),
		pulls:    st.pulls.Load(),
		pushes:   st.pushes.Load(),
		blobs:    st.blobsVerified.Load(),
		bytes:    st.bytesVerified.Load(),
		sent:     st.bytesPushed.Load(),
		errors:   st.errTotal.Load(),
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// percentile by nearest rank of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// summary prints the result block: a Markdown table of latencies, one of totals, the
// errors, and one machine-readable SOAKRESULT line.
func (st *stats) summary(w io.Writer, label string, cfg config, warm, end counters) {
	window := end.at.Sub(warm.at).Seconds()
	if window <= 0 {
		window = 1
	}
	rate := func(a, b int64) string { return fmt.Sprintf("%.1f", float64(b-a)/window) }
	fmt.Fprintf(w, "\n### soak: %s\n\n", label)
	fmt.Fprintf(w, "%d pullers, %d pushers, %s (first %s warm-up, not measured), %d images to pull; latencies and rates over the %.0f s after warm-up\n\n",
		cfg.pullers, cfg.pushers, cfg.duration, cfg.warmup, cfg.repos, window)
	fmt.Fprintln(w, "| operation | count | p50 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	p50s, p99s := map[op]time.Duration{}, map[op]time.Duration{}
	for o := op(0); o < nOps; o++ {
		st.mu[o].Lock()
		s := slices.Clone(st.samples[o])
		st.mu[o].Unlock()
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		if len(s) == 0 {
			fmt.Fprintf(w, "| %s | 0 | - | - | - |\n", opNames[o])
			continue
		}
		p50s[o], p99s[o] = percentile(s, 0.50), percentile(s, 0.99)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", opNames[o], len(s), ms(p50s[o]), ms(p99s[o]), ms(s[len(s)-1]))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| total | count | per second |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| HTTP requests (token GETs and 401s included) | %d | %s |\n", end.requests-warm.requests, rate(warm.requests, end.requests))
	fmt.Fprintf(w, "| images pulled and verified | %d | %s |\n", end.pulls-warm.pulls, rate(warm.pulls, end.pulls))
	fmt.Fprintf(w, "| images pushed and read back | %d | %s |\n", end.pushes-warm.pushes, rate(warm.pushes, end.pushes))
	fmt.Fprintf(w, "| blobs verified (sha256) | %d | %s |\n", end.blobs-warm.blobs, rate(warm.blobs, end.blobs))
	fmt.Fprintf(w, "| MiB verified | %.0f | %.1f |\n", float64(end.bytes-warm.bytes)/(1<<20), float64(end.bytes-warm.bytes)/(1<<20)/window)
	fmt.Fprintf(w, "| MiB pushed | %.0f | %.1f |\n", float64(end.sent-warm.sent)/(1<<20), float64(end.sent-warm.sent)/(1<<20)/window)
	fmt.Fprintf(w, "| whole run: tokens fetched / 401 challenges / of those, to a token sent | %d / %d / %d | |\n",
		st.tokens.Load(), st.challenges.Load(), st.refused.Load())
	fmt.Fprintf(w, "| whole run: errors | %d | |\n", st.errTotal.Load())
	st.errMu.Lock()
	if len(st.errOrder) > 0 {
		fmt.Fprintln(w, "\nerrors (first of each reason):")
		for _, r := range st.errOrder {
			fmt.Fprintf(w, "  %6d  %s\n          e.g. %s\n", st.errReasons[r].count, r, st.errReasons[r].detail)
		}
		if st.errOther > 0 {
			fmt.Fprintf(w, "  %6d  with other reasons (only the first %d reasons are kept)\n", st.errOther, maxReasons)
		}
	}
	st.errMu.Unlock()
	fmt.Fprintf(w, "\nSOAKRESULT label=%s errors=%d requests=%d rps=%s pulls_per_s=%s pushes_per_s=%s mib_verified=%.0f"+
		" manifest_get_p50_ms=%s manifest_get_p99_ms=%s blob_get_p50_ms=%s blob_get_p99_ms=%s"+
		" blob_push_p50_ms=%s blob_push_p99_ms=%s manifest_put_p50_ms=%s manifest_put_p99_ms=%s tokens=%d\n",
		label, st.errTotal.Load(), end.requests-warm.requests, rate(warm.requests, end.requests),
		rate(warm.pulls, end.pulls), rate(warm.pushes, end.pushes), float64(end.bytes-warm.bytes)/(1<<20),
		ms(p50s[opManifestGet]), ms(p99s[opManifestGet]), ms(p50s[opBlobGet]), ms(p99s[opBlobGet]),
		ms(p50s[opBlobPush]), ms(p99s[opBlobPush]), ms(p50s[opManifestPut]), ms(p99s[opManifestPut]), st.tokens.Load())
}
