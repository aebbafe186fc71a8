package engine

import "math"

// account is the simulated trading account of one backtest, holding all
// equity in one long or short position (or in cash). It starts with
// equity 1, so equity doubles as the growth factor of the strategy.
//
// Positions are held in units, not rebalanced to a fixed fraction each
// bar: a short opened at price P with equity E keeps cash 2E and owes
// E/P units, exactly like a real short. Trade P&L therefore equals the
// change in account equity between entry and exit.
type account struct {
	cash        float64
	units       float64 // signed: > 0 long, < 0 short
	side        int8    // +1 long, -1 short, 0 flat
	entryEquity float64 // equity just before the open position was entered
	trades      int     // closed round trips
	wins        int     // closed round trips with positive P&L after costs
	ruined      bool    // equity hit zero; no further trading
}

// newAccount returns a flat account with equity 1.
func newAccount() account {
	return account{cash: 1}
}

// equity marks the account to market at price.
func (a *account) equity(price float64) float64 {
	return a.cash + float64(a.units*price)
}

// moveTo trades from the current side to target at price, paying
// costRate (fee plus slippage as a fraction) on the notional of each side.
// A flip from long to short therefore pays twice: once to close, once to
// open.
func (a *account) moveTo(target int8, price, costRate float64) {
	if target == a.side || a.ruined {
		return
	}
	if a.side != 0 {
		notional := float64(a.units * price) // signed proceeds of closing
		a.cash = a.cash + notional - float64(math.Abs(notional)*costRate)
		a.units = 0
		a.side = 0
		a.closeTrade(a.cash)
	}
	if target != 0 {
		a.entryEquity = a.cash
		invested := a.cash - float64(a.cash*costRate)
		a.units = float64(target) * invested / price
		// Long: all cash buys units. Short: sale proceeds join the cash.
		a.cash = invested * float64(1-target)
		a.side = target
	}
}

// ruin closes the books when marked equity is no longer positive (only
// possible for a short after the price more than doubles): the position
// counts as a losing trade and the account stops trading.
func (a *account) ruin() {
	if a.side != 0 {
		a.closeTrade(0)
	}
	a.cash, a.units, a.side, a.ruined = 0, 0, 0, true
}

// closeTrade records a closed round trip that ended with exitEquity.
func (a *account) closeTrade(exitEquity float64) {
	a.trades++
	if exitEquity > a.entryEquity {
		a.wins++
	}
}
