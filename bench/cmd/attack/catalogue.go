package main

// catalogue is every attack, in the order.
func catalogue() []attack {
	return []attack{
		zlibBomb(),
		s2Length(),
		retainSubscribe(),
		retainKV(),
		retainBlob(),
		queueLeak(),
		resultTooLarge(),
		connFlood(),
		emptyFrames(),
		slowPut(),
		slowFetch(),
		slowHeartbeat(),
		tokenGuess(),
		badBlobGet(),
		manyTypes(),
		lockStarvation(),
		silentBanbot(),
	}
}
