// The Observe API for Go guests (GOOS=wasip1): the raw imports of
// dylibso:observe/api and wrappers that take Go strings.
package main

import "unsafe"

//go:wasmimport dylibso:observe/api span-enter
func observeSpanEnter(ptr unsafe.Pointer, length uint32)

//go:wasmimport dylibso:observe/api span-exit
func observeSpanExit()

//go:wasmimport dylibso:observe/api span-tags
func observeSpanTags(ptr unsafe.Pointer, length uint32)

//go:wasmimport dylibso:observe/api metric
func observeMetric(format uint32, ptr unsafe.Pointer, length uint32)

//go:wasmimport dylibso:observe/api log
func observeLog(level uint32, ptr unsafe.Pointer, length uint32)

// Log levels and metric formats as numbered by the spec.
const (
	LevelError = 1
	LevelWarn  = 2
	LevelInfo  = 3
	LevelDebug = 4
	LevelTrace = 5

	formatStatsd = 1
)

// The wrappers keep the string alive across the call; the host copies it
// out of memory before returning.

func spanEnter(name string) {
	observeSpanEnter(unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)))
}

func spanExit() { observeSpanExit() }

func spanTags(tags string) {
	observeSpanTags(unsafe.Pointer(unsafe.StringData(tags)), uint32(len(tags)))
}

func statsd(line string) {
	observeMetric(formatStatsd, unsafe.Pointer(unsafe.StringData(line)), uint32(len(line)))
}

func logMessage(level uint32, message string) {
	observeLog(level, unsafe.Pointer(unsafe.StringData(message)), uint32(len(message)))
}
