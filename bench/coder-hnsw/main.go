// Command coder-hnsw benchmarks github.com/coder/hnsw (pure Go HNSW) with the
// vectord-bench CLI and JSON-lines output:
//
//	{"build_s": .., "mem_mb": .., "n": .., "dim": ..}
//	{"ef": .., "recall": .., "qps": ..}   one per --ef value
//
// Parameter mapping (coder/hnsw v0.6.1, see bench/README.md):
//   - M -> Graph.M, the neighbour cap on every layer (there is no 2*M on layer 0).
//   - There is no separate ef_construction: Graph.EfSearch is used by Add and by
//     Search alike, so it is set to --ef-construction while adding and to each
//     --ef value before querying.
//   - Ml is the probability of promoting a node one layer up; --ml defaults to 1/M,
//     which gives the same level distribution as hnswlib's mult = 1/ln(M)
//     (the library's own default is 0.25).
//   - euclidean -> hnsw.EuclideanDistance, cosine -> hnsw.CosineDistance,
//     dot -> -vek32.Dot (registered as "dot").
//
// One goroutine (GOMAXPROCS=1, so the garbage collector shares that core too).
// The graph keeps references to the caller's slices, so the vectors are copied
// into one index-owned block inside the measured build (as hnswlib and vectord
// store their own copies). mem_mb is RSS growth (/proc/self/statm, MiB) across
// that build, taken after runtime.GC + debug.FreeOSMemory on both sides.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coder/hnsw"
	"github.com/viterin/vek/vek32"
)

func note(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[coder-hnsw] "+format+"\n", a...)
}

func die(format string, a ...any) {
	note(format, a...)
	os.Exit(1)
}

// readVecs reads .fvecs / .ivecs / .bvecs (int32 dim, then dim values, little-endian)
// into rows of float32; limit <= 0 means all rows.
func readVecs(path string, limit int) [][]float32 {
	raw, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	if len(raw) < 4 {
		die("%s: empty", path)
	}
	size := 4
	if filepath.Ext(path) == ".bvecs" {
		size = 1
	}
	dim := int(binary.LittleEndian.Uint32(raw))
	rec := 4 + dim*size
	if len(raw)%rec != 0 {
		die("%s: size %d is not a multiple of record size %d", path, len(raw), rec)
	}
	n := len(raw) / rec
	if limit > 0 && limit < n {
		n = limit
	}
	data := make([]float32, n*dim)
	rows := make([][]float32, n)
	for i := 0; i < n; i++ {
		r := raw[i*rec:]
		if int(binary.LittleEndian.Uint32(r)) != dim {
			die("%s: record %d has a different dimension", path, i)
		}
		for j := 0; j < dim; j++ {
			switch filepath.Ext(path) {
			case ".fvecs":
				data[i*dim+j] = math.Float32frombits(binary.LittleEndian.Uint32(r[4+4*j:]))
			case ".ivecs":
				data[i*dim+j] = float32(int32(binary.LittleEndian.Uint32(r[4+4*j:])))
			default:
				data[i*dim+j] = float32(r[4+j])
			}
		}
		rows[i] = data[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return rows
}

// exactKNN is brute force in float64, ties broken by smaller id (used only with --limit).
func exactKNN(base, queries [][]float32, k int, metric string) [][]int {
	norm := func(v []float32) float64 {
		s := 0.0
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s)
	}
	out := make([][]int, len(queries))
	for qi, q := range queries {
		d := make([]float64, len(base))
		qn := norm(q)
		for i, b := range base {
			s := 0.0
			for j := range q {
				if metric == "euclidean" {
					t := float64(q[j]) - float64(b[j])
					s += t * t
				} else {
					s -= float64(q[j]) * float64(b[j])
				}
			}
			if metric == "cosine" {
				s /= math.Max(qn*norm(b), 1e-30)
			}
			d[i] = s
		}
		ids := make([]int, len(base))
		for i := range ids {
			ids[i] = i
		}
		sort.SliceStable(ids, func(a, b int) bool { return d[ids[a]] < d[ids[b]] })
		if k > len(ids) {
			k = len(ids)
		}
		out[qi] = ids[:k]
	}
	return out
}

func rssBytes() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// emit prints one JSON object with the keys in the given order (key, value, key, value, ...).
func emit(kv ...any) {
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := json.Marshal(kv[i])
		v, _ := json.Marshal(kv[i+1])
		parts = append(parts, string(k)+":"+string(v))
	}
	fmt.Println("{" + strings.Join(parts, ",") + "}")
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func dotDistance(a, b []float32) float32 { return -vek32.Dot(a, b) }

func main() {
	base := flag.String("base", "", "base vectors (.fvecs/.bvecs)")
	queriesPath := flag.String("queries", "", "query vectors")
	truthPath := flag.String("truth", "", "ground truth (.ivecs)")
	metric := flag.String("metric", "", "euclidean|cosine|dot")
	m := flag.Int("m", 16, "max neighbours per node (Graph.M)")
	efc := flag.Int("ef-construction", 200, "Graph.EfSearch while adding")
	efList := flag.String("ef", "10,20,40,80,160", "comma-separated Graph.EfSearch values for queries")
	k := flag.Int("k", 10, "neighbours per query")
	limit := flag.Int("limit", 0, "use only the first N base vectors (truth is recomputed)")
	ml := flag.Float64("ml", 0, "level generation factor Graph.Ml (default 1/M)")
	seed := flag.Int64("seed", 100, "seed of Graph.Rng (level generation)")
	threads := flag.Int("threads", 1, "ignored: the library is single-threaded")
	save := flag.String("save", "", "ignored")
	load := flag.String("load", "", "ignored")
	deleteFrac := flag.Float64("delete-frac", 0, "ignored")
	flag.Parse()
	if *base == "" || *queriesPath == "" || *truthPath == "" || *metric == "" {
		flag.Usage()
		os.Exit(2)
	}
	if *threads != 1 || *save != "" || *load != "" || *deleteFrac != 0 {
		note("--threads/--save/--load/--delete-frac are not supported here and are ignored")
	}
	runtime.GOMAXPROCS(1)
	if *ml == 0 {
		*ml = 1 / float64(*m)
	}
	var dist hnsw.DistanceFunc
	switch *metric {
	case "euclidean":
		dist = hnsw.EuclideanDistance
	case "cosine":
		dist = hnsw.CosineDistance
	case "dot":
		dist = dotDistance
		hnsw.RegisterDistanceFunc("dot", dist)
	default:
		die("unknown metric %q", *metric)
	}

	vecs := readVecs(*base, *limit)
	queries := readVecs(*queriesPath, 0)
	truthRows := readVecs(*truthPath, 0)
	n, dim := len(vecs), len(vecs[0])
	truth := make([][]int, len(truthRows))
	valid := len(truthRows) == len(queries)
	for i, r := range truthRows {
		truth[i] = make([]int, len(r))
		for j, x := range r {
			truth[i][j] = int(x)
			if int(x) >= n {
				valid = false
			}
		}
	}
	if !valid {
		note("truth does not match the first %d base vectors: recomputing exact top-%d (%s)", n, *k, *metric)
		truth = exactKNN(vecs, queries, *k, *metric)
	}
	note("github.com/coder/hnsw M=%d EfSearch(build)=%d Ml=%.4f distance=%s GOMAXPROCS=1", *m, *efc, *ml, *metric)

	rss0 := rssBytes()
	start := time.Now()
	store := make([]float32, n*dim) // index-owned copy of the vectors
	g := hnsw.NewGraph[int32]()
	g.M, g.Ml, g.EfSearch, g.Distance = *m, *ml, *efc, dist
	g.Rng = rand.New(rand.NewSource(*seed))
	for i, v := range vecs {
		row := store[i*dim : (i+1)*dim : (i+1)*dim]
		copy(row, v)
		g.Add(hnsw.MakeNode(int32(i), row))
	}
	buildS := time.Since(start).Seconds()
	rss1 := rssBytes()
	runtime.KeepAlive(vecs) // the loaded rows must not be freed inside the measurement, or they offset the copy
	emit("build_s", round(buildS, 3), "mem_mb", round(float64(rss1-rss0)/(1<<20), 1), "n", n, "dim", dim)

	for _, s := range strings.Split(*efList, ",") {
		if s == "" {
			continue
		}
		ef, err := strconv.Atoi(s)
		if err != nil {
			die("bad --ef value %q", s)
		}
		g.EfSearch = ef
		found := make([][]int32, len(queries))
		t := time.Now()
		for i, q := range queries {
			res := g.Search(q, *k)
			ids := make([]int32, len(res))
			for j, r := range res {
				ids[j] = r.Key
			}
			found[i] = ids
		}
		elapsed := time.Since(t).Seconds()
		hits := 0
		for i, ids := range found {
			want := map[int]bool{}
			for _, x := range truth[i][:min(*k, len(truth[i]))] {
				want[x] = true
			}
			for _, x := range ids {
				if want[int(x)] {
					hits++
				}
			}
		}
		emit("ef", ef, "recall", round(float64(hits)/float64(*k*len(queries)), 4),
			"qps", round(float64(len(queries))/elapsed, 1))
	}
}
