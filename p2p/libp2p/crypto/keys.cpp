// Identity keys: Ed25519 through libsodium, RSA/ECDSA/secp256k1 through OpenSSL 3 EVP.
#include "p2p/libp2p/crypto/keys.hpp"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "p2p/libp2p/proto/crypto.pb.h"

namespace kwaai::p2p::libp2p {
namespace {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // cannot happen on a sane system; no RNG otherwise
  });
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

Bytes encode_key_proto(KeyType type, ByteView data) {
  pb::PublicKey msg;  // PublicKey and PrivateKey share the layout
  msg.set_type(static_cast<pb::KeyType>(type));
  msg.set_data(data.data(), data.size());
  Bytes out(msg.ByteSizeLong());
  msg.SerializeWithCachedSizesToArray(out.data());
  return out;
}

// SubjectPublicKeyInfo DER → EVP_PKEY of the expected base id.
Result<PkeyPtr> parse_spki(ByteView der, int expected_id, const char* what) {
  const unsigned char* p = der.data();
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) return make_error(Errc::kMalformed, std::string(what) + " public key is not SPKI DER");
  if (p != der.data() + der.size())
    return make_error(Errc::kMalformed, std::string(what) + " public key has trailing bytes");
  if (EVP_PKEY_get_base_id(key.get()) != expected_id)
    return make_error(Errc::kMalformed, std::string(what) + " public key has another algorithm");
  if (expected_id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(key.get());
    if (bits < static_cast<int>(kRsaMinBits) || bits > static_cast<int>(kRsaMaxBits))
      return make_error(Errc::kUnsupported,
                        "RSA key of " + std::to_string(bits) + " bits (allowed 2048..8192)");
  }
  return key;
}

// 33-byte compressed SEC1 point on secp256k1 → EVP_PKEY.
Result<PkeyPtr> parse_secp256k1(ByteView point) {
  if (point.size() != 33 || (point[0] != 0x02 && point[0] != 0x03))
    return make_error(Errc::kMalformed, "secp256k1 public key is not a 33-byte compressed point");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0)
    return make_error(Errc::kCrypto, "OpenSSL EC context");
  char group[] = "secp256k1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<std::uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0 || raw == nullptr)
    return make_error(Errc::kMalformed, "secp256k1 point is not on the curve");
  return PkeyPtr(raw);
}

Status evp_verify(EVP_PKEY* key, ByteView message, ByteView signature) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) <= 0)
    return make_error(Errc::kCrypto, "OpenSSL verify init");
  const int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                                  message.size());
  if (rc != 1) return make_error(Errc::kBadSignature, "signature does not verify");
  return {};
}

Result<Bytes> read_small_file(const std::filesystem::path& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::kIo, "cannot open " + path.string());
  Bytes data;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.insert(data.end(), buf, buf + in.gcount());
    if (data.size() > max)
      return make_error(Errc::kTooLarge, path.string() + " is larger than " + std::to_string(max));
  }
  return data;
}

}  // namespace

std::string_view to_string(KeyType t) {
  switch (t) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEd25519:
      return "Ed25519";
    case KeyType::kSecp256k1:
      return "Secp256k1";
    case KeyType::kEcdsa:
      return "ECDSA";
  }
  return "unknown";
}

// ---- PublicKey -------------------------------------------------------------------------

Result<PublicKey> PublicKey::from_protobuf(ByteView bytes) {
  if (bytes.size() > kMaxKeyProtobufSize)
    return make_error(Errc::kTooLarge, "public key protobuf of " + std::to_string(bytes.size()) +
                                           " bytes (max " + std::to_string(kMaxKeyProtobufSize) +
                                           ")");
  pb::PublicKey msg;
  // ParsePartial + IsInitialized: same check as ParseFromArray without libprotobuf logging
  // an error line for every malformed key a peer sends.
  if (!msg.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !msg.IsInitialized())
    return make_error(Errc::kMalformed, "public key protobuf does not parse");
  const auto type = static_cast<KeyType>(msg.type());
  const ByteView data(reinterpret_cast<const std::uint8_t*>(msg.data().data()), msg.data().size());
  switch (type) {
    case KeyType::kEd25519:
      if (data.size() != crypto_sign_PUBLICKEYBYTES)
        return make_error(Errc::kMalformed, "Ed25519 public key is not 32 bytes");
      break;
    case KeyType::kRsa:
      if (auto k = parse_spki(data, EVP_PKEY_RSA, "RSA"); !k) return std::move(k).error();
      break;
    case KeyType::kEcdsa:
      if (auto k = parse_spki(data, EVP_PKEY_EC, "ECDSA"); !k) return std::move(k).error();
      break;
    case KeyType::kSecp256k1:
      if (auto k = parse_secp256k1(data); !k) return std::move(k).error();
      break;
    default:
      return make_error(Errc::kUnsupported, "unknown key type");
  }
  return PublicKey(type, Bytes(data.begin(), data.end()));
}

Bytes PublicKey::to_protobuf() const {
  return encode_key_proto(type_, data_);
}

Status PublicKey::verify(ByteView message, ByteView signature) const {
  switch (type_) {
    case KeyType::kEd25519: {
      ensure_sodium();
      if (data_.size() != crypto_sign_PUBLICKEYBYTES)
        return make_error(Errc::kMalformed, "Ed25519 public key is not 32 bytes");
      if (signature.size() != crypto_sign_BYTES)
        return make_error(Errc::kBadSignature, "Ed25519 signature is not 64 bytes");
      if (crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                      data_.data()) != 0)
        return make_error(Errc::kBadSignature, "Ed25519 signature does not verify");
      return {};
    }
    case KeyType::kRsa:
    case KeyType::kEcdsa: {
      auto key = parse_spki(data_, type_ == KeyType::kRsa ? EVP_PKEY_RSA : EVP_PKEY_EC,
                            type_ == KeyType::kRsa ? "RSA" : "ECDSA");
      if (!key) return std::move(key).error();
      return evp_verify(key->get(), message, signature);
    }
    case KeyType::kSecp256k1: {
      auto key = parse_secp256k1(data_);
      if (!key) return std::move(key).error();
      return evp_verify(key->get(), message, signature);
    }
  }
  return make_error(Errc::kUnsupported, "unknown key type");
}

// ---- PrivateKey ------------------------------------------------------------------------

PrivateKey PrivateKey::generate_ed25519() {
  ensure_sodium();
  std::array<std::uint8_t, 32> seed{};
  randombytes_buf(seed.data(), seed.size());
  PrivateKey k = ed25519_from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return k;
}

PrivateKey PrivateKey::ed25519_from_seed(const std::array<std::uint8_t, 32>& seed) {
  ensure_sodium();
  std::array<std::uint8_t, 32> pk{};
  std::array<std::uint8_t, 64> sk{};
  crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data());
  PrivateKey k(KeyType::kEd25519, PublicKey(KeyType::kEd25519, Bytes(pk.begin(), pk.end())));
  k.ed25519_sk_ = sk;
  sodium_memzero(sk.data(), sk.size());
  return k;
}

Result<PrivateKey> PrivateKey::from_protobuf(ByteView bytes) {
  if (bytes.size() > 16 * 1024) return make_error(Errc::kTooLarge, "private key protobuf > 16 KiB");
  pb::PrivateKey msg;
  if (!msg.ParsePartialFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      !msg.IsInitialized())
    return make_error(Errc::kMalformed, "private key protobuf does not parse");
  const ByteView data(reinterpret_cast<const std::uint8_t*>(msg.data().data()), msg.data().size());
  switch (static_cast<KeyType>(msg.type())) {
    case KeyType::kEd25519: {
      if (data.size() != 64 && data.size() != 96)
        return make_error(Errc::kMalformed, "Ed25519 private key is not 64 or 96 bytes");
      if (data.size() == 96 && !std::equal(data.begin() + 32, data.begin() + 64, data.begin() + 64))
        return make_error(Errc::kMalformed, "legacy Ed25519 key: public key copies differ");
      std::array<std::uint8_t, 32> seed{};
      std::copy_n(data.begin(), 32, seed.begin());
      PrivateKey k = ed25519_from_seed(seed);
      sodium_memzero(seed.data(), seed.size());
      if (!std::equal(data.begin() + 32, data.begin() + 64, k.public_.data().begin()))
        return make_error(Errc::kMalformed, "Ed25519 private key: public half does not match seed");
      return k;
    }
    case KeyType::kRsa: {
      const unsigned char* p = data.data();
      EVP_PKEY* raw = d2i_PrivateKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(data.size()));
      if (raw == nullptr) return make_error(Errc::kMalformed, "RSA private key is not PKCS#1 DER");
      std::shared_ptr<EVP_PKEY> key(raw, PkeyFree{});
      const int bits = EVP_PKEY_get_bits(raw);
      if (bits < static_cast<int>(kRsaMinBits) || bits > static_cast<int>(kRsaMaxBits))
        return make_error(Errc::kUnsupported, "RSA key of " + std::to_string(bits) + " bits");
      unsigned char* spki = nullptr;
      const int n = i2d_PUBKEY(raw, &spki);
      if (n <= 0) return make_error(Errc::kCrypto, "cannot encode RSA public key");
      Bytes pub(spki, spki + n);
      OPENSSL_free(spki);
      PrivateKey k(KeyType::kRsa, PublicKey(KeyType::kRsa, std::move(pub)));
      k.rsa_ = std::move(key);
      return k;
    }
    default:
      return make_error(Errc::kUnsupported,
                        "own identity key type " +
                            std::string(to_string(static_cast<KeyType>(msg.type()))) +
                            " (use Ed25519 or RSA)");
  }
}

Bytes PrivateKey::to_protobuf() const {
  if (type_ == KeyType::kEd25519) return encode_key_proto(type_, ed25519_sk_);
  unsigned char* der = nullptr;
  const int n = i2d_PrivateKey(rsa_.get(), &der);  // RSA → PKCS#1 RSAPrivateKey
  Bytes data(der, der + (n > 0 ? n : 0));
  if (der != nullptr) {
    OPENSSL_cleanse(der, static_cast<std::size_t>(n));
    OPENSSL_free(der);
  }
  Bytes out = encode_key_proto(type_, data);
  OPENSSL_cleanse(data.data(), data.size());
  return out;
}

Result<PrivateKey> PrivateKey::load_file(const std::filesystem::path& path) {
  auto data = read_small_file(path, 16 * 1024);
  if (!data) return std::move(data).error();
  auto key = from_protobuf(*data);
  sodium_memzero(data->data(), data->size());
  if (!key) return make_error(key.error().code, path.string() + ": " + key.error().message);
  return key;
}

Status PrivateKey::save_file(const std::filesystem::path& path) const {
  const std::filesystem::path tmp = path.string() + ".tmp";
  Bytes data = to_protobuf();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Errc::kIo, "create " + tmp.string() + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(Errc::kIo, "write " + tmp.string() + ": " + std::strerror(err));
    }
    off += static_cast<std::size_t>(n);
  }
  sodium_memzero(data.data(), data.size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return make_error(Errc::kIo, "flush " + tmp.string());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return make_error(Errc::kIo, "rename to " + path.string() + ": " + std::strerror(err));
  }
  return {};
}

Result<Bytes> PrivateKey::sign(ByteView message) const {
  if (type_ == KeyType::kEd25519) {
    Bytes sig(crypto_sign_BYTES);
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), ed25519_sk_.data());
    return sig;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, rsa_.get()) <= 0)
    return make_error(Errc::kCrypto, "OpenSSL sign init");
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) <= 0)
    return make_error(Errc::kCrypto, "OpenSSL sign size");
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) <= 0)
    return make_error(Errc::kCrypto, "OpenSSL sign");
  sig.resize(len);
  return sig;
}

PrivateKey::~PrivateKey() {
  sodium_memzero(ed25519_sk_.data(), ed25519_sk_.size());
}
PrivateKey::PrivateKey(const PrivateKey&) = default;
PrivateKey& PrivateKey::operator=(const PrivateKey&) = default;
PrivateKey::PrivateKey(PrivateKey&& o) noexcept
    : type_(o.type_),
      public_(std::move(o.public_)),
      ed25519_sk_(o.ed25519_sk_),
      rsa_(std::move(o.rsa_)) {
  sodium_memzero(o.ed25519_sk_.data(), o.ed25519_sk_.size());
}
PrivateKey& PrivateKey::operator=(PrivateKey&& o) noexcept {
  if (this != &o) {
    type_ = o.type_;
    public_ = std::move(o.public_);
    ed25519_sk_ = o.ed25519_sk_;
    rsa_ = std::move(o.rsa_);
    sodium_memzero(o.ed25519_sk_.data(), o.ed25519_sk_.size());
  }
  return *this;
}

}  // namespace kwaai::p2p::libp2p
