// Command gofixtures writes index files as the Go vectord service wrote
// them (schemas/go-lhv1.md): "LHV1", the envelope length (uint32
// big-endian), the envelope JSON (params, per-id metadata, version), then
// the bytes of github.com/coder/hnsw v0.6.1 Graph.Export. The graph is
// built by the real library with the service's defaults (NewGraph: M 16,
// Ml 0.25, EfSearch 20) from the first -n vectors of an .fvecs file; then
// -delete of them are deleted with Graph.Delete (which leaves neighbour
// keys that no longer exist, as the service's files after DELETEs do).
//
// Next to the file it writes <out>.expect, what an importer must find:
//
//	uint32 count, then per item in layer-0 order of the ids' sorted list:
//	uint32 id_len, id, uint32 dim, dim x float32, uint32 meta_len, meta JSON
//
// all little-endian, the vectors as Graph.Lookup returns them. With
// -queries it prints the graph's own recall@10 (before the deletes, at
// its EfSearch) against brute force as one JSON line.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"

	"github.com/coder/hnsw"
)

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gofixtures: "+format+"\n", a...)
	os.Exit(1)
}

func readFvecs(path string, limit int) [][]float32 {
	raw, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	var out [][]float32
	for len(raw) >= 4 && (limit <= 0 || len(out) < limit) {
		dim := int(binary.LittleEndian.Uint32(raw))
		if len(raw) < 4+4*dim {
			die("%s: truncated", path)
		}
		v := make([]float32, dim)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4+4*i:]))
		}
		out = append(out, v)
		raw = raw[4+4*dim:]
	}
	return out
}

// The service's envelope as schemas/go-lhv1.md describes it.
type params struct {
	Name      string `json:"name"`
	Dimension int    `json:"dimension"`
	M         int    `json:"m"`
	EfSearch  int    `json:"ef_search"`
	Distance  string `json:"distance"`
}

type envelope struct {
	Version  int                        `json:"version"`
	Params   params                     `json:"params"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

func id(i int) string {
	if i%7 == 3 {
		return fmt.Sprintf("文档/%d", i) // non-ASCII and a slash, as names of real documents
	}
	return fmt.Sprintf("doc-%d", i)
}

func meta(i int) json.RawMessage {
	if i%5 == 0 {
		return nil // no metadata
	}
	m := map[string]any{"doc": i, "title": fmt.Sprintf("Document %d – <b>é</b>", i),
		"score": float64(i) * 0.25, "tags": []string{"a", fmt.Sprint(i % 3)}, "ok": i%2 == 0,
		"nested": map[string]any{"x": nil, "y": []any{1.5, -2, "z"}}}
	b, err := json.Marshal(m)
	if err != nil {
		die("%v", err)
	}
	return b
}

func dist(metric string, a, b []float32) float64 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	if metric == "cosine" {
		return 1 - dot/math.Sqrt(na*nb)
	}
	return math.Sqrt(l2)
}

func main() {
	base := flag.String("base", "", ".fvecs file of the vectors")
	n := flag.Int("n", 1000, "vectors to add (the first n)")
	metric := flag.String("metric", "euclidean", "euclidean | cosine")
	del := flag.Int("delete", 0, "vectors to delete after adding")
	name := flag.String("name", "docs", "index name (params.name)")
	out := flag.String("out", "", "file to write")
	queries := flag.String("queries", "", ".fvecs of queries: print the Go graph's recall@10")
	nq := flag.Int("nq", 100, "queries to use")
	flag.Parse()
	if *base == "" || *out == "" {
		die("usage: gofixtures -base F.fvecs -out FILE [-n N] [-metric M] [-delete D]")
	}
	vecs := readFvecs(*base, *n)
	if len(vecs) < *n {
		die("%s: only %d vectors", *base, len(vecs))
	}
	g := hnsw.NewGraph[string]()
	switch *metric {
	case "euclidean":
		g.Distance = hnsw.EuclideanDistance
	case "cosine":
		g.Distance = hnsw.CosineDistance
	default:
		die("unknown metric %q", *metric)
	}
	env := envelope{Version: 1, Metadata: map[string]json.RawMessage{},
		Params: params{Name: *name, Dimension: len(vecs[0]), M: g.M, EfSearch: g.EfSearch, Distance: *metric}}
	for i, v := range vecs {
		g.Add(hnsw.MakeNode(id(i), v))
		if m := meta(i); m != nil {
			env.Metadata[id(i)] = m
		}
	}

	if *queries != "" {
		qs := readFvecs(*queries, *nq)
		hits := 0
		for _, q := range qs {
			type cand struct {
				d float64
				i int
			}
			all := make([]cand, len(vecs))
			for i, v := range vecs {
				all[i] = cand{dist(*metric, q, v), i}
			}
			sort.Slice(all, func(a, b int) bool {
				if all[a].d != all[b].d {
					return all[a].d < all[b].d
				}
				return all[a].i < all[b].i
			})
			truth := map[string]bool{}
			for _, c := range all[:10] {
				truth[id(c.i)] = true
			}
			for _, r := range g.Search(q, 10) {
				if truth[r.Key] {
					hits++
				}
			}
		}
		fmt.Printf("{\"go_recall_at_10\": %.4f, \"n\": %d, \"queries\": %d, \"ef_search\": %d, \"metric\": %q}\n",
			float64(hits)/float64(10*len(qs)), len(vecs), len(qs), g.EfSearch, *metric)
	}

	rng := rand.New(rand.NewSource(20261202))
	for _, i := range rng.Perm(len(vecs))[:*del] {
		if !g.Delete(id(i)) {
			die("delete %s failed", id(i))
		}
		delete(env.Metadata, id(i))
	}

	var file bytes.Buffer
	envb, err := json.Marshal(env)
	if err != nil {
		die("%v", err)
	}
	file.WriteString("LHV1")
	binary.Write(&file, binary.BigEndian, uint32(len(envb)))
	file.Write(envb)
	if err := g.Export(&file); err != nil {
		die("export: %v", err)
	}
	if err := os.WriteFile(*out, file.Bytes(), 0o644); err != nil {
		die("%v", err)
	}

	// What the importer must find: the surviving ids, as the graph holds them.
	var ids []string
	for i := range vecs {
		if _, ok := g.Lookup(id(i)); ok {
			ids = append(ids, id(i))
		}
	}
	sort.Strings(ids)
	var exp bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&exp, le, uint32(len(ids)))
	for _, k := range ids {
		v, _ := g.Lookup(k)
		binary.Write(&exp, le, uint32(len(k)))
		exp.WriteString(k)
		binary.Write(&exp, le, uint32(len(v)))
		binary.Write(&exp, le, v)
		m := env.Metadata[k]
		binary.Write(&exp, le, uint32(len(m)))
		exp.Write(m)
	}
	if err := os.WriteFile(*out+".expect", exp.Bytes(), 0o644); err != nil {
		die("%v", err)
	}
	fmt.Fprintf(os.Stderr, "gofixtures: %s: %d items (%d deleted), %d bytes, %s, graph len %d\n",
		*out, len(ids), *del, file.Len(), *metric, g.Len())
}
