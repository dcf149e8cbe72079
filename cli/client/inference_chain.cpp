#include "cli/client/inference_chain.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>

#include "p2p/petals/uids.hpp"

namespace kwaai::client {

InferenceChain::InferenceChain(lp::Host& host, SpanSource spans, const ClientConfig& cfg,
                               std::uint32_t n_blocks, std::int64_t max_length, std::int64_t hidden)
    : host_(host),
      spans_(std::move(spans)),
      cfg_(cfg),
      n_blocks_(n_blocks),
      max_length_(max_length),
      hidden_(hidden) {}

std::vector<RouteHop> InferenceChain::route() const {
  std::vector<RouteHop> r;
  for (const auto& h : hops_)
    r.push_back({h.session->span().peer, h.session->span().start, h.session->span().end});
  return r;
}

void InferenceChain::note_failure(const std::string& peer, const std::string& what) {
  ++attempts_;
  banned_.insert(peer);
  failures_.push_back(what);
  spdlog::warn("client: {} (attempt {}/{})", what, attempts_, cfg_.max_retries);
  if (attempts_ > cfg_.max_retries) {
    std::string all;
    for (const auto& f : failures_) all += "\n  " + f;
    throw ClientError("gave up after " + std::to_string(attempts_) +
                      " failed server attempts:" + all);
  }
}

asio::awaitable<void> InferenceChain::backoff() {
  // Petals: no wait before the first retry, then min_backoff * 2^(n-1) capped at max_backoff.
  if (attempts_ <= 1) co_return;
  auto d = cfg_.min_backoff * (1LL << std::min(attempts_ - 2, 16));
  if (d > cfg_.max_backoff) d = cfg_.max_backoff;
  if (d.count() <= 0) co_return;
  asio::steady_timer t(host_.executor(), d);
  co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<std::vector<InferenceChain::Hop>> InferenceChain::open_range(
    std::uint32_t start, std::uint32_t end, std::vector<float> replay) {
  for (;;) {
    const std::vector<RemoteSpan> spans = co_await spans_();
    RouteOptions ro;
    ro.banned = banned_;
    ro.cache_tokens_needed = static_cast<std::uint64_t>(max_length_);
    auto route = make_route(spans, start, end, ro);
    if (!route) {
      std::string why = route.error().message;
      if (!failures_.empty()) why += "; earlier failures:";
      for (const auto& f : failures_) why += "\n  " + f;
      throw ClientError(why);
    }
    std::vector<Hop> out;
    bool failed = false;
    for (const RemoteSpan& s : *route) {
      auto sess =
          co_await ServerSession::open(host_, s, cfg_.dht_prefix, max_length_, cfg_.timeouts);
      if (!sess) {
        for (auto& h : out) co_await h.session->close();
        note_failure(s.peer, "open " + s.peer + " [" + std::to_string(s.start) + ":" +
                                 std::to_string(s.end) + "): " + sess.error().to_string());
        co_await backoff();
        failed = true;
        break;
      }
      Hop h;
      h.session = std::move(*sess);
      h.session->set_wire_format(wire_);
      h.session->set_active_adapter(cfg_.active_adapter);
      if (out.empty()) h.replay = replay;
      out.push_back(std::move(h));
    }
    if (!failed) co_return out;
  }
}

asio::awaitable<void> InferenceChain::open() {
  for (;;) {
    std::vector<float> no_replay;
    hops_ = co_await open_range(0, n_blocks_, std::move(no_replay));
    const std::string peer = hops_.front().session->span().peer;
    // Named: no temporaries bound to references across co_await (GCC 12 frees them early).
    const std::string uid0 = p2p::petals::block_uid(cfg_.dht_prefix, 0);
    auto w = co_await fetch_inference_format(host_, peer, uid0, cfg_.timeouts.step);
    if (w) {
      wire_ = *w;
      for (auto& h : hops_) h.session->set_wire_format(wire_);
      co_return;
    }
    for (auto& h : hops_) co_await h.session->close();
    hops_.clear();
    note_failure(peer, "rpc_info " + peer + ": " + w.error().to_string());
    co_await backoff();
  }
}

asio::awaitable<std::vector<float>> InferenceChain::step(std::vector<float> x,
                                                         std::int64_t tokens) {
  const std::int64_t end_pos = position_ + tokens;
  if (end_pos > max_length_)
    throw ClientError("step past max_length " + std::to_string(max_length_));
  // `cur` holds hidden states for positions [end_pos - cur_rows, end_pos) at the boundary
  // before hops_[i]; a replacement hop may widen it (it recomputes from position 0).
  std::vector<float> cur = std::move(x);
  std::int64_t cur_rows = tokens;
  for (std::size_t i = 0; i < hops_.size();) {
    Hop& h = hops_[i];
    const std::int64_t base = h.session->position();
    std::vector<float> input;
    if (base >= end_pos - cur_rows) {
      const std::int64_t rows = end_pos - base;
      input.assign(cur.end() - rows * hidden_, cur.end());
    } else if (base == 0 &&
               static_cast<std::int64_t>(h.replay.size()) == (end_pos - cur_rows) * hidden_) {
      input = h.replay;
      input.insert(input.end(), cur.begin(), cur.end());
    } else {
      throw ClientError("internal: hop " + std::to_string(i) + " at position " +
                        std::to_string(base) + " cannot continue from " +
                        std::to_string(end_pos - cur_rows));
    }
    const std::int64_t rows = static_cast<std::int64_t>(input.size()) / hidden_;
    auto out = co_await h.session->step(input, 1, rows, hidden_);
    if (out) {
      h.history.insert(h.history.end(), input.begin(), input.end());
      h.replay.clear();
      h.replay.shrink_to_fit();
      cur = std::move(*out);
      cur_rows = rows;
      ++i;
      continue;
    }
    // Replace this hop by a fresh route over its blocks; the first replacement replays what
    // this one had seen, the rest recompute from the widened output.
    const RemoteSpan failed = h.session->span();
    note_failure(failed.peer, out.error().to_string());
    std::vector<float> history = h.replay.empty() ? std::move(h.history) : std::move(h.replay);
    co_await h.session->close();
    co_await backoff();
    std::vector<Hop> fresh = co_await open_range(failed.start, failed.end, std::move(history));
    spdlog::info("client: blocks [{}:{}) re-routed", failed.start, failed.end);
    hops_.erase(hops_.begin() + static_cast<std::ptrdiff_t>(i));
    hops_.insert(hops_.begin() + static_cast<std::ptrdiff_t>(i),
                 std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
  }
  position_ = end_pos;
  cur.erase(cur.begin(), cur.end() - tokens * hidden_);
  co_return cur;
}

asio::awaitable<void> InferenceChain::close() {
  for (auto& h : hops_) co_await h.session->close();
}

}  // namespace kwaai::client
