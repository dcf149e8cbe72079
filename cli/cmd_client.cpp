// `kwaainet client generate`: generate through a Petals swarm. The blocks run on the servers
// found in the DHT under --dht-prefix; embeddings, final norm, LM head and sampling run here on
// the model's ends (--model gives those tensors and the tokenizer; no block is loaded).
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/client/client.hpp"
#include "cli/commands.hpp"
#include "engine/core/backend.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {
namespace {

struct ClientGenerateConfig {
  std::vector<std::string> initial_peers;
  std::string dht_prefix;
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  std::int64_t max_new_tokens = 32;
  float temperature = 0.0f;
  std::int64_t top_k = 0;
  float top_p = 1.0f;
  float repetition_penalty = 1.0f;
  std::uint64_t seed = 0;
  std::string device;
  std::string active_adapter;
  int max_retries = 4;
  double step_timeout_s = 180;
  bool ignore_eos = false;
  bool json = false;
};

std::vector<std::int32_t> parse_id_list(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  while (i <= text.size()) {
    const std::size_t comma = std::min(text.find(',', i), text.size());
    std::string_view tok(text.data() + i, comma - i);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    std::int32_t v = 0;
    auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ec != std::errc{} || end != tok.data() + tok.size())
      throw std::invalid_argument("--prompt-ids: '" + std::string(tok) +
                                  "' is not a token id (expected e.g. 1,2,3)");
    ids.push_back(v);
    i = comma + 1;
  }
  return ids;
}

std::string route_text(const std::vector<client::RouteHop>& route) {
  std::string s;
  for (const auto& h : route)
    s += "\n  blocks [" + std::to_string(h.start) + ":" + std::to_string(h.end) + ") served by " +
         h.peer;
  return s;
}

void run_client_generate(const ClientGenerateConfig& c, const GlobalOptions& global) {
  using namespace kwaai::engine;
  if (c.prompt.empty() == c.prompt_ids.empty())
    throw std::invalid_argument("client generate: give exactly one of --prompt and --prompt-ids");
  const std::string device = !c.device.empty()                 ? c.device
                             : !global.device_override.empty() ? global.device_override
                                                               : "cpu";
  auto src = open_model(c.model);
  std::optional<Tokenizer> tok;
  if (std::filesystem::is_directory(c.model))
    tok = Tokenizer::from_model_dir(c.model);
  else if (src->format() == "gguf")
    tok = Tokenizer::from_gguf(c.model);
  std::vector<std::int32_t> prompt;
  if (!c.prompt_ids.empty()) {
    prompt = parse_id_list(c.prompt_ids);
  } else {
    if (!tok)
      throw std::invalid_argument("client generate: --prompt needs a tokenizer in " + c.model +
                                  "; use --prompt-ids");
    prompt = tok->encode(c.prompt, /*add_bos=*/true);
  }
  auto be = make_backend(device);
  llama::ModelEnds ends(*be, *src);
  for (std::size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= src->config().vocab)
      throw std::invalid_argument("client generate: token id " + std::to_string(prompt[i]) +
                                  " outside the vocabulary [0, " +
                                  std::to_string(src->config().vocab) + ")");

  client::ClientConfig cfg;
  cfg.initial_peers = c.initial_peers;
  cfg.dht_prefix = c.dht_prefix;
  cfg.max_retries = c.max_retries;
  if (!c.active_adapter.empty()) cfg.active_adapter = c.active_adapter;
  cfg.timeouts.step = std::chrono::milliseconds(static_cast<std::int64_t>(c.step_timeout_s * 1000));
  client::PetalsClient pc(ends, cfg);

  client::GenerateOptions opt;
  opt.prompt = prompt;
  opt.max_new_tokens = c.max_new_tokens;
  opt.sampling = {c.temperature, c.top_k, c.top_p, c.repetition_penalty, c.seed};
  if (!c.ignore_eos) {
    for (auto id : src->config().eos_ids) opt.stop_tokens.push_back(static_cast<std::int32_t>(id));
    if (tok && tok->eos_id() >= 0) opt.stop_tokens.push_back(tok->eos_id());
  }
  // Text (or ids) stream to stdout, or to stderr under --json; the route always to stderr.
  std::FILE* stream = c.json ? stderr : stdout;
  std::vector<std::int32_t> generated;
  std::string shown;
  opt.on_token = [&](std::int32_t id) {
    generated.push_back(id);
    if (tok) {
      const std::string text = tok->decode(generated, /*skip_special=*/true);
      if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
        std::fputs(text.c_str() + shown.size(), stream);
        shown = text;
      }
    } else {
      std::fprintf(stream, "%s%d", generated.size() > 1 ? "," : "", id);
    }
    std::fflush(stream);
  };
  bool first_route = true;
  opt.on_route = [&](const std::vector<client::RouteHop>& r) {
    std::fprintf(stderr, "%s%s\n",
                 first_route ? "route:" : "\nroute changed:", route_text(r).c_str());
    std::fflush(stderr);
    first_route = false;
  };
  const client::GenerateResult res = pc.generate(opt);
  std::fputc('\n', stream);
  std::fflush(stream);  // before the stderr summary, also when stdout is a pipe
  spdlog::info(
      "client: {} new tokens, {:.1f} tokens/s (setup {:.2f} s, prefill {:.3f} s){}", res.ids.size(),
      res.tokens_per_s, res.setup_s, res.prefill_s,
      res.failures.empty() ? "" : ", " + std::to_string(res.failures.size()) + " failover(s)");
  if (c.json) {
    nlohmann::json j;
    j["ids"] = res.ids;
    j["text"] = tok ? tok->decode(res.ids, /*skip_special=*/true) : std::string();
    j["prompt_tokens"] = prompt.size();
    j["route"] = nlohmann::json::array();
    for (const auto& h : res.route)
      j["route"].push_back({{"peer", h.peer}, {"start", h.start}, {"end", h.end}});
    j["tokens_per_s"] = res.tokens_per_s;
    j["setup_s"] = res.setup_s;
    j["prefill_s"] = res.prefill_s;
    j["failures"] = res.failures;
    j["wire_dtype"] = res.wire_dtype;
    j["device"] = be->name();
    std::cout << j.dump() << std::endl;
  }
}

}  // namespace

void register_client(CLI::App& app, GlobalOptions& global) {
  CLI::App* client = app.add_subcommand("client", "Use a Petals swarm as a client");
  client->require_subcommand(1);
  auto cfg = std::make_shared<ClientGenerateConfig>();
  CLI::App* sub = client->add_subcommand(
      "generate", "Generate through the servers of a swarm (blocks remote, ends local)");
  sub->add_option("--initial-peers", cfg->initial_peers, "/ip4/../tcp/N/p2p/<id> ...")->required();
  sub->add_option("--dht-prefix", cfg->dht_prefix, "the model's DHT prefix (e.g. stories260K-hf)")
      ->required();
  sub->add_option("--model", cfg->model,
                  "HF folder or .gguf with the embeddings, final norm, LM head and tokenizer")
      ->required();
  sub->add_option("--prompt", cfg->prompt, "prompt text (needs the model's tokenizer)");
  sub->add_option("--prompt-ids", cfg->prompt_ids, "prompt as comma-separated token ids");
  sub->add_option("--max-new-tokens", cfg->max_new_tokens, "tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  sub->add_option("--temperature", cfg->temperature, "0 = greedy")->capture_default_str();
  sub->add_option("--top-k", cfg->top_k, "0 = off")->capture_default_str();
  sub->add_option("--top-p", cfg->top_p, "1 = off")->capture_default_str();
  sub->add_option("--repetition-penalty", cfg->repetition_penalty, "1 = off")
      ->capture_default_str();
  sub->add_option("--seed", cfg->seed, "sampling seed")->capture_default_str();
  sub->add_option("--device", cfg->device, "device for the model's ends (default: cpu)");
  sub->add_option("--active-adapter", cfg->active_adapter,
                  "only servers with this adapter; it is requested in each session");
  sub->add_option("--max-retries", cfg->max_retries, "failed server attempts before giving up")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  sub->add_option("--step-timeout", cfg->step_timeout_s, "seconds to wait for one step's answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--ignore-eos", cfg->ignore_eos, "do not stop at the end-of-sequence token");
  sub->add_flag("--json", cfg->json, "print a JSON summary as the last stdout line");
  sub->callback([cfg, &global] { run_client_generate(*cfg, global); });
}

}  // namespace kwaai::cli
