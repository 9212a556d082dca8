// inventory: a Go (GOOS=wasip1) guest, the large real module (~2.5 MB)
// of the examples. It builds a small inventory, sorts it, encodes it as
// JSON, counts some primes, and reports with the Observe API:
//
//	inventory                       tags lang:go,items:6
//	  load
//	  summarize                     metric inventory.value:523.84|g
//	  encode                        log INFO "encoded 238 bytes"
//	  primes
//
// Output (stdout):
//
//	items: 6
//	top: widget x40 @ 2.50
//	total value: 523.84
//	json: [{"name":"anvil","qty":1,"price":99},...]
//	primes below 100: 25
//
// Exit code 0 (the Go runtime ends by calling proc_exit(0), so a host sees
// an exit, not a return, with runtime functions still on the stack). With
// the argument "fail" it exits with code 3 after printing "failing on
// request" to stderr, before any Observe call. With "yield" the primes are
// counted on a goroutine (see primes): same output.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type Item struct {
	Name     string  `json:"name"`
	Quantity int     `json:"qty"`
	Price    float64 `json:"price"`
}

//go:noinline
func load() []Item {
	spanEnter("load")
	defer spanExit()
	return []Item{
		{"widget", 40, 2.50},
		{"gadget", 7, 19.99},
		{"anvil", 1, 99.00},
		{"sprocket", 25, 0.80},
		{"gizmo", 3, 34.17},
		{"doohickey", 12, 5.20},
	}
}

//go:noinline
func summarize(items []Item) (Item, float64) {
	spanEnter("summarize")
	defer spanExit()
	sort.Slice(items, func(i, j int) bool { return items[i].Quantity > items[j].Quantity })
	total := 0.0
	for _, it := range items {
		total += float64(it.Quantity) * it.Price
	}
	statsd(fmt.Sprintf("inventory.value:%.2f|g", total))
	return items[0], total
}

//go:noinline
func encode(items []Item) string {
	spanEnter("encode")
	defer spanExit()
	sorted := append([]Item(nil), items...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	data, err := json.Marshal(sorted)
	if err != nil {
		logMessage(LevelError, "encode failed: "+err.Error())
		return ""
	}
	logMessage(LevelInfo, fmt.Sprintf("encoded %d bytes", len(data)))
	return string(data)
}

//go:noinline
func countPrimes(limit int) int {
	sieve := make([]bool, limit)
	count := 0
	for n := 2; n < limit; n++ {
		if sieve[n] {
			continue
		}
		count++
		for m := n * n; m < limit; m += n {
			sieve[m] = true
		}
	}
	return count
}

// primes counts on a goroutine when asked to: the main goroutine then
// blocks on the channel inside the manual span "primes", and Go on wasm
// switches goroutines by unwinding the whole wasm stack, so an instrumented
// build reports the exits of the functions below the span (and later their
// enters again) while "primes" is still open.
//
//go:noinline
func primes(limit int, onGoroutine bool) int {
	spanEnter("primes")
	defer spanExit()
	if !onGoroutine {
		return countPrimes(limit)
	}
	result := make(chan int)
	go func() { result <- countPrimes(limit) }()
	return <-result
}

func main() {
	arg := ""
	if len(os.Args) > 1 {
		arg = os.Args[1]
	}
	if arg == "fail" {
		fmt.Fprintln(os.Stderr, "failing on request")
		os.Exit(3)
	}
	spanEnter("inventory")
	items := load()
	spanTags(fmt.Sprintf("lang:go,items:%d", len(items)))
	top, total := summarize(items)
	fmt.Printf("items: %d\n", len(items))
	fmt.Printf("top: %s x%d @ %.2f\n", top.Name, top.Quantity, top.Price)
	fmt.Printf("total value: %.2f\n", total)
	fmt.Printf("json: %s\n", strings.TrimSpace(encode(items)))
	fmt.Printf("primes below 100: %d\n", primes(100, arg == "yield"))
	spanExit()
}
