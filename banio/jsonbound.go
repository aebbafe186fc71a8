package banio

import "math"

// Upper bounds on the JSON payloads of built-in actions, so that a handler can refuse
// a payload that cannot be valid before parsing it: json.Unmarshal of a payload costs
// memory in proportion to its size (every string is copied out), and a payload may
// inflate to WithMaxInflatedSize. Each bound assumes the worst encoding a conforming
// client can produce — a six-byte \u escape for every byte — so no payload that would
// be accepted once parsed is refused.

// jsonStringMax is the longest JSON encoding of an n-byte string.
func jsonStringMax(n int) int { return satAdd(satMul(6, n), 2) }

// tagsPayloadMax is the longest JSON array of at most count strings holding at most
// n bytes in all: brackets, and per string two quotes and a comma.
func tagsPayloadMax(n, count int) int { return satAdd(satAdd(2, satMul(3, count)), satMul(6, n)) }

// satMul and satAdd saturate at math.MaxInt instead of wrapping around, for limits
// configured near it. Their operands are not negative.
func satMul(a, b int) int {
	if b != 0 && a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}

func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// kvFieldsOverhead bounds what a KeyValExpire or lockReq object holds besides its
// strings: braces, field names, separators and two int64 values.
const kvFieldsOverhead = 128

// setValPayloadMax is the longest onSetVal payload whose key and value fit the limits.
func (c *config) setValPayloadMax() int {
	return satAdd(satAdd(jsonStringMax(c.kvKeyLen), jsonStringMax(c.kvValueLen)), kvFieldsOverhead)
}

// lockPayloadMax is the longest __lock__ or __unlock__ payload whose key, token and
// reply key fit the limits (a token is stored as a value, a reply key is bounded like
// a key).
func (c *config) lockPayloadMax() int {
	return satAdd(satAdd(satMul(2, jsonStringMax(c.kvKeyLen)), jsonStringMax(c.kvValueLen)), kvFieldsOverhead)
}
