// semcom loopback: a SoapySDR device module whose transmit stream feeds its receive stream, so
// `semcom tx` and `semcom rx` (or any SoapySDR program) can run end to end through the real
// SoapySDR API without hardware.
//
// Build (the test harness does this; needs libsoapysdr-dev and g++):
//   g++ -std=c++17 -O2 -shared -fPIC SemcomLoopback.cpp -o libSemcomLoopback.so -lSoapySDR
// Use:
//   SOAPY_SDR_PLUGIN_PATH=/dir/of/the/.so semcom rx -a driver=loopback,name=cable1 …
//
// Model. Every device name is a virtual cable: a ring of CF32 samples in a shared-memory file
// (/dev/shm/semcom-loopback-NAME), indexed by a sample clock that runs in real time from the
// moment the cable was created (CLOCK_MONOTONIC, so it is shared by all processes). Any number
// of processes may open the same name; one transmitter per name is expected.
//  - RX streams continuously at the sample rate, a few milliseconds behind the clock: what was
//    transmitted for those sample times, else zeros, plus optional noise. A reader that falls
//    more than half the ring behind gets SOAPY_SDR_OVERFLOW and resumes at the present, as a
//    device whose buffer overran.
//  - TX bursts start tx_lead_ms in the future; the writer may run a quarter of the ring ahead of
//    the clock, then writeStream blocks (back-pressure, as a device's FIFO). A burst that falls
//    behind the clock is an underflow; a timed burst whose time has passed is a time error.
//    Both are reported by readStreamStatus.
//  - Transmit and receive centre frequencies may differ: the receiver sees the signal shifted
//    by their difference (a carrier frequency offset), or nothing when it is outside the band.
//  - Gains: RX elements LNA (0–30 dB) and PGA (0–40 dB), TX element PAD (0–70 dB). 40 dB total
//    in each direction is unity amplitude (the defaults).
//
// Device arguments (besides driver=loopback):
//   name=NAME        the cable (default: the first of $SEMCOM_LOOPBACK_DEVICES, else loopback0).
//                    Enumeration lists the names in $SEMCOM_LOOPBACK_DEVICES (comma-separated).
//   dir=PATH         directory of the shared ring (default /dev/shm, else /tmp)
//   buffer_ms=N      ring length in milliseconds of samples (default 200)
//   tx_lead_ms=N     a transmit burst starts this far ahead of the clock (default 20): the
//                    transmitter's FIFO depth, which absorbs the host's scheduling hiccups
//   noise_db=X       white noise added on receive, power per sample in dB full scale
//   fail_after=N     after N samples on a stream, every stream call fails (an unplugged device)
//   stall_after=N    after N samples, receive delivers nothing any more (a hung device)

#include <SoapySDR/Device.hpp>
#include <SoapySDR/Formats.hpp>
#include <SoapySDR/Logger.hpp>
#include <SoapySDR/Registry.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <complex>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

namespace {

using cf = std::complex<float>;

constexpr uint64_t kMagic = 0x504f4f4c434d4553ull; // "SEMCLOOP"
constexpr uint32_t kVersion = 1;
constexpr int64_t kBlock = 4096;    // samples per tagged block of the ring
constexpr size_t kMtu = 16384;      // samples per stream call
constexpr double kUnityGainDb = 40.0;

int64_t monotonicNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void sleepNs(int64_t ns) {
    if (ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
}

// The shared part of a cable. Followed in the file by `blocks` tags (the absolute block index
// whose samples a ring slot holds, -1 for none) and `capacity` samples.
struct Header {
    uint64_t magic;
    uint32_t version;
    uint32_t reserved;
    int64_t capacity; // samples, a multiple of kBlock
    double sampleRate;
    int64_t t0Ns; // CLOCK_MONOTONIC time of sample 0
    std::atomic<uint64_t> txFrequencyBits; // the transmitter's centre frequency (double bits)
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared-memory atomics must be lock-free");
static_assert(std::atomic<int64_t>::is_always_lock_free, "shared-memory atomics must be lock-free");

constexpr size_t kHeaderBytes = 64;
static_assert(sizeof(Header) <= kHeaderBytes, "header too large");

// fcntl byte locks on the ring file: byte 0 serialises attach/detach; every user holds a read
// lock on byte 1 for as long as it is attached, so "can I write-lock byte 1" means "am I alone".
bool lockByte(int fd, short type, off_t byte, bool wait) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    while (fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl) != 0) {
        if (errno == EINTR) continue;
        return false;
    }
    return true;
}

std::string errnoText(const std::string &what) { return what + ": " + std::strerror(errno); }

class Cable {
public:
    Cable(const std::string &name, const std::string &dir, double rate, double bufferSeconds) : name_(name) {
        path_ = dir + "/semcom-loopback-" + name;
        for (;;) {
            fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd_ < 0) throw std::runtime_error(errnoText("loopback: cannot open " + path_));
            lockByte(fd_, F_WRLCK, 0, true);
            struct stat a {}, b {};
            // Someone unlinked the file between our open and our lock: start again.
            if (fstat(fd_, &a) == 0 && stat(path_.c_str(), &b) == 0 && a.st_ino == b.st_ino) break;
            close(fd_);
        }
        try {
            if (lockByte(fd_, F_WRLCK, 1, false)) {
                create(rate, bufferSeconds);
            } else {
                lockByte(fd_, F_RDLCK, 1, true);
                join(rate);
            }
        } catch (...) {
            if (map_ != nullptr) munmap(map_, mapBytes_);
            close(fd_);
            throw;
        }
        lockByte(fd_, F_UNLCK, 0, true);
    }

    ~Cable() {
        lockByte(fd_, F_WRLCK, 0, true);
        munmap(map_, mapBytes_);
        if (lockByte(fd_, F_WRLCK, 1, false)) unlink(path_.c_str()); // the last user
        close(fd_); // releases every lock
    }

    Cable(const Cable &) = delete;
    Cable &operator=(const Cable &) = delete;

    double rate() const { return h_->sampleRate; }
    int64_t capacity() const { return h_->capacity; }
    const std::string &name() const { return name_; }

    // The sample index the clock is at now.
    int64_t nowIndex() const { return int64_t(double(monotonicNs() - h_->t0Ns) * h_->sampleRate * 1e-9); }
    int64_t timeNsOf(int64_t index) const { return int64_t(std::llround(double(index) * 1e9 / h_->sampleRate)); }
    int64_t indexOfTimeNs(long long ns) const { return int64_t(std::llround(double(ns) * h_->sampleRate * 1e-9)); }
    int64_t hardwareTimeNs() const { return monotonicNs() - h_->t0Ns; }
    // Wall-clock nanoseconds until the clock reaches `index`.
    int64_t nsUntil(int64_t index) const {
        return int64_t(double(index) * 1e9 / h_->sampleRate) - (monotonicNs() - h_->t0Ns);
    }

    void setTxFrequency(double f) {
        uint64_t bits;
        std::memcpy(&bits, &f, 8);
        h_->txFrequencyBits.store(bits, std::memory_order_relaxed);
    }
    double txFrequency() const {
        uint64_t bits = h_->txFrequencyBits.load(std::memory_order_relaxed);
        double f;
        std::memcpy(&f, &bits, 8);
        return f;
    }

    // Copies samples [index, index + n) into out: transmitted samples, zeros where nothing was.
    // Indices are never negative (callers start at 0 or later).
    void read(int64_t index, size_t n, cf *out) const {
        while (n > 0) {
            const int64_t blk = index / kBlock;
            const int64_t off = index - blk * kBlock;
            const size_t k = std::min<size_t>(n, size_t(kBlock - off));
            const int64_t slot = blk % blocks_;
            if (tags_[slot].load(std::memory_order_acquire) == blk)
                std::memcpy(out, samples_ + slot * kBlock + off, k * sizeof(cf));
            else
                std::fill(out, out + k, cf(0.0f, 0.0f));
            out += k;
            index += k;
            n -= k;
        }
    }

    // Writes samples [index, index + n), scaled by `amp`.
    void write(int64_t index, size_t n, const cf *in, float amp) {
        while (n > 0) {
            const int64_t blk = index / kBlock;
            const int64_t off = index - blk * kBlock;
            const size_t k = std::min<size_t>(n, size_t(kBlock - off));
            const int64_t slot = blk % blocks_;
            cf *dst = samples_ + slot * kBlock;
            if (tags_[slot].load(std::memory_order_relaxed) != blk) {
                // First write into this block since the ring came round: clear what the slot
                // held for an older block, then claim it.
                std::fill(dst, dst + kBlock, cf(0.0f, 0.0f));
                tags_[slot].store(blk, std::memory_order_release);
            }
            for (size_t i = 0; i < k; i++) dst[off + i] = in[i] * amp;
            std::atomic_thread_fence(std::memory_order_release);
            in += k;
            index += k;
            n -= k;
        }
    }

private:
    void mapFile(int64_t capacity) {
        mapBytes_ = bytesFor(capacity);
        map_ = mmap(nullptr, mapBytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (map_ == MAP_FAILED) {
            map_ = nullptr;
            throw std::runtime_error(errnoText("loopback: cannot map " + path_));
        }
        h_ = static_cast<Header *>(map_);
        blocks_ = capacity / kBlock;
        tags_ = reinterpret_cast<std::atomic<int64_t> *>(static_cast<char *>(map_) + kHeaderBytes);
        samples_ = reinterpret_cast<cf *>(static_cast<char *>(map_) + kHeaderBytes + size_t(blocks_) * sizeof(int64_t));
    }

    static size_t bytesFor(int64_t capacity) {
        return kHeaderBytes + size_t(capacity / kBlock) * sizeof(int64_t) + size_t(capacity) * sizeof(cf);
    }

    void create(double rate, double bufferSeconds) {
        // At least 64 blocks, so the receive delay stays small against the ring.
        const int64_t blocks = std::max<int64_t>(int64_t(std::ceil(rate * bufferSeconds / double(kBlock))), 64);
        const int64_t capacity = blocks * kBlock;
        if (ftruncate(fd_, 0) != 0 || ftruncate(fd_, off_t(bytesFor(capacity))) != 0)
            throw std::runtime_error(errnoText("loopback: cannot size " + path_));
        // Reserve the pages now: on a small tmpfs (/dev/shm in a container) a sparse file would
        // fault with SIGBUS later, in the middle of a stream.
        if (const int e = posix_fallocate(fd_, 0, off_t(bytesFor(capacity))); e != 0) {
            errno = e;
            throw std::runtime_error(errnoText("loopback: cannot reserve " + std::to_string(bytesFor(capacity) >> 20) +
                                               " MiB for " + path_ + " (use dir= or a smaller buffer_ms=)"));
        }
        mapFile(capacity); // a fresh file reads as zeros: magic 0 until we are done
        h_->version = kVersion;
        h_->capacity = capacity;
        h_->sampleRate = rate;
        h_->t0Ns = monotonicNs();
        const double f = 2.45e9;
        uint64_t bits;
        std::memcpy(&bits, &f, 8);
        new (&h_->txFrequencyBits) std::atomic<uint64_t>(bits);
        for (int64_t i = 0; i < blocks_; i++) new (&tags_[i]) std::atomic<int64_t>(-1);
        std::atomic_thread_fence(std::memory_order_release);
        h_->magic = kMagic;
        lockByte(fd_, F_RDLCK, 1, true); // from sole owner to one user among others
        SoapySDR_logf(SOAPY_SDR_INFO, "loopback %s: new cable at %g S/s, %lld-sample ring (%s)", name_.c_str(), rate,
                      (long long)capacity, path_.c_str());
    }

    void join(double rate) {
        // Attaching holds byte 0, as the creator did while initialising: the header is complete.
        struct {
            uint64_t magic;
            uint32_t version;
            uint32_t reserved;
            int64_t capacity;
            double sampleRate;
        } probe{};
        struct stat st {};
        if (fstat(fd_, &st) != 0 || pread(fd_, &probe, sizeof probe, 0) != ssize_t(sizeof probe))
            throw std::runtime_error("loopback: " + path_ + " is not a loopback cable (too short)");
        if (probe.magic != kMagic || probe.version != kVersion || probe.capacity <= 0 ||
            probe.capacity % kBlock != 0 || size_t(st.st_size) != bytesFor(probe.capacity))
            throw std::runtime_error("loopback: " + path_ + " is not a loopback cable of this version");
        if (std::abs(probe.sampleRate - rate) > 1e-6 * rate) {
            std::ostringstream m;
            m << "loopback " << name_ << " is in use at " << probe.sampleRate << " S/s by another process; "
              << "open it at the same sample rate, or use another name=";
            throw std::runtime_error(m.str());
        }
        mapFile(probe.capacity);
    }

    std::string name_, path_;
    int fd_ = -1;
    void *map_ = nullptr;
    size_t mapBytes_ = 0;
    Header *h_ = nullptr;
    std::atomic<int64_t> *tags_ = nullptr;
    int64_t blocks_ = 0;
    cf *samples_ = nullptr;
};

// One mapping per cable per process (fcntl locks belong to the process, not the descriptor).
std::shared_ptr<Cable> attachCable(const std::string &name, const std::string &dir, double rate, double bufferSeconds) {
    static std::mutex mutex;
    static std::map<std::string, std::weak_ptr<Cable>> cables;
    std::lock_guard<std::mutex> lock(mutex);
    const std::string key = dir + "/" + name;
    if (auto c = cables[key].lock()) {
        if (std::abs(c->rate() - rate) > 1e-6 * rate)
            throw std::runtime_error("loopback " + name + " is open at another sample rate in this process");
        return c;
    }
    auto c = std::make_shared<Cable>(name, dir, rate, bufferSeconds);
    cables[key] = c;
    return c;
}

std::vector<std::string> configuredNames() {
    std::vector<std::string> names;
    const char *env = std::getenv("SEMCOM_LOOPBACK_DEVICES");
    std::string s = env != nullptr ? env : "";
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) names.push_back(item);
    }
    if (names.empty()) names.push_back("loopback0");
    return names;
}

bool validName(const std::string &n) {
    if (n.empty() || n.size() > 100) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return n[0] != '.';
}

double numberArg(const SoapySDR::Kwargs &args, const std::string &key, double fallback) {
    auto it = args.find(key);
    if (it == args.end()) return fallback;
    char *end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || !std::isfinite(v))
        throw std::runtime_error("loopback: " + key + "=" + it->second + " is not a number");
    return v;
}

struct Status {
    int code;
    int flags;
    long long timeNs;
};

struct StreamState {
    int direction = SOAPY_SDR_RX;
    bool active = false;
    std::shared_ptr<Cable> cable;
    int64_t pos = 0;     // next sample index
    bool inBurst = false;
    uint64_t streamed = 0;
    bool failedLogged = false;
    // Receive noise: a table of unit-power complex Gaussian samples read from random places.
    std::vector<cf> noise;
    std::mt19937_64 rng{12345};
    // Receive frequency offset: rotation and its per-sample step.
    cf rot{1.0f, 0.0f};
    // Transmit status reports.
    std::mutex statusMutex;
    std::condition_variable statusCv;
    std::deque<Status> statuses;

    void pushStatus(Status s) {
        {
            std::lock_guard<std::mutex> lock(statusMutex);
            if (statuses.size() < 1024) statuses.push_back(s);
        }
        statusCv.notify_one();
    }
};

class LoopbackDevice : public SoapySDR::Device {
public:
    explicit LoopbackDevice(const SoapySDR::Kwargs &args) {
        auto it = args.find("name");
        name_ = it != args.end() ? it->second : configuredNames().front();
        if (!validName(name_)) throw std::runtime_error("loopback: name=" + name_ + " must be letters, digits, - _ .");
        it = args.find("dir");
        if (it != args.end()) {
            dir_ = it->second;
        } else {
            struct stat st {};
            dir_ = (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) ? "/dev/shm" : "/tmp";
        }
        bufferSeconds_ = numberArg(args, "buffer_ms", 200.0) / 1e3;
        if (!(bufferSeconds_ >= 0.01 && bufferSeconds_ <= 10.0)) throw std::runtime_error("loopback: buffer_ms must be 10 … 10000");
        txLeadSeconds_ = numberArg(args, "tx_lead_ms", 20.0) / 1e3;
        if (!(txLeadSeconds_ >= 0.0 && txLeadSeconds_ <= 1.0)) throw std::runtime_error("loopback: tx_lead_ms must be 0 … 1000");
        noiseDb_ = numberArg(args, "noise_db", -400.0);
        const double fail = numberArg(args, "fail_after", -1.0);
        failAfter_ = fail < 0 ? UINT64_MAX : uint64_t(fail);
        const double stall = numberArg(args, "stall_after", -1.0);
        stallAfter_ = stall < 0 ? UINT64_MAX : uint64_t(stall);
        for (int d = 0; d < 2; d++) {
            rate_[d] = 20e6;
            freq_[d] = 2.45e9;
            bw_[d] = 20e6;
        }
        gains_[SOAPY_SDR_RX]["LNA"] = 20.0;
        gains_[SOAPY_SDR_RX]["PGA"] = 20.0;
        gains_[SOAPY_SDR_TX]["PAD"] = 40.0;
    }

    // Identification.
    std::string getDriverKey() const override { return "loopback"; }
    std::string getHardwareKey() const override { return "semcom-loopback"; }
    SoapySDR::Kwargs getHardwareInfo() const override {
        return {{"name", name_}, {"cable", dir_ + "/semcom-loopback-" + name_}, {"version", "1"}};
    }

    // Channels.
    size_t getNumChannels(const int) const override { return 1; }
    bool getFullDuplex(const int, const size_t) const override { return true; }

    // Streams.
    std::vector<std::string> getStreamFormats(const int, const size_t) const override { return {SOAPY_SDR_CF32}; }
    std::string getNativeStreamFormat(const int, const size_t, double &fullScale) const override {
        fullScale = 1.0;
        return SOAPY_SDR_CF32;
    }

    SoapySDR::Stream *setupStream(const int direction, const std::string &format, const std::vector<size_t> &channels,
                                  const SoapySDR::Kwargs &) override {
        if (format != SOAPY_SDR_CF32) throw std::runtime_error("loopback: streams are CF32 only, not " + format);
        if (channels.size() > 1 || (channels.size() == 1 && channels[0] != 0))
            throw std::runtime_error("loopback: one channel (0)");
        auto *s = new StreamState();
        s->direction = direction;
        if (direction == SOAPY_SDR_RX && noiseDb_ > -300.0) {
            std::normal_distribution<float> n(0.0f, std::sqrt(0.5f));
            s->noise.resize(1 << 16);
            for (auto &x : s->noise) x = cf(n(s->rng), n(s->rng));
        }
        std::lock_guard<std::mutex> lock(mutex_);
        streams_.push_back(s);
        return reinterpret_cast<SoapySDR::Stream *>(s);
    }

    void closeStream(SoapySDR::Stream *stream) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            streams_.erase(std::remove(streams_.begin(), streams_.end(), s), streams_.end());
        }
        delete s;
    }

    size_t getStreamMTU(SoapySDR::Stream *) const override { return kMtu; }

    int activateStream(SoapySDR::Stream *stream, const int, const long long, const size_t) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        std::lock_guard<std::mutex> lock(mutex_);
        s->cable = attachCable(name_, dir_, rate_[s->direction], bufferSeconds_);
        if (s->direction == SOAPY_SDR_RX) {
            // Sample indices start at 0 when the cable is created; nothing precedes them.
            s->pos = std::max<int64_t>(0, s->cable->nowIndex() - rxDelay(*s->cable));
        } else {
            s->inBurst = false;
            s->cable->setTxFrequency(freq_[SOAPY_SDR_TX]);
        }
        s->active = true;
        return 0;
    }

    int deactivateStream(SoapySDR::Stream *stream, const int, const long long) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        s->active = false;
        s->inBurst = false;
        return 0;
    }

    int readStream(SoapySDR::Stream *stream, void *const *buffs, const size_t numElems, int &flags, long long &timeNs,
                   const long timeoutUs) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        flags = 0;
        if (!s->active || s->direction != SOAPY_SDR_RX) {
            sleepNs(int64_t(timeoutUs) * 1000);
            return SOAPY_SDR_TIMEOUT;
        }
        if (s->streamed >= failAfter_) return unplugged(*s);
        if (s->streamed >= stallAfter_) {
            sleepNs(int64_t(timeoutUs) * 1000);
            return SOAPY_SDR_TIMEOUT;
        }
        Cable &c = *s->cable;
        const int64_t delay = rxDelay(c);
        const int64_t maxLag = c.capacity() / 2;
        const int64_t deadline = monotonicNs() + int64_t(timeoutUs) * 1000;
        const int64_t want = int64_t(std::min<size_t>(numElems, kMtu));
        int64_t avail = c.nowIndex() - delay - s->pos;
        if (avail > maxLag) {
            // The reader fell too far behind: the ring overran, as a device's buffer does.
            s->pos = c.nowIndex() - delay;
            return SOAPY_SDR_OVERFLOW;
        }
        while (avail < want) {
            const int64_t wait = c.nsUntil(s->pos + want + delay);
            const int64_t left = deadline - monotonicNs();
            if (left <= 0) break;
            sleepNs(std::min(wait, left));
            avail = c.nowIndex() - delay - s->pos;
        }
        if (avail <= 0) return SOAPY_SDR_TIMEOUT;
        size_t n = std::min<size_t>(size_t(avail), numElems);
        n = std::min<size_t>(n, failAfter_ - s->streamed);
        n = std::min<size_t>(n, stallAfter_ - s->streamed);
        cf *out = static_cast<cf *>(buffs[0]);
        const int64_t first = s->pos;
        c.read(first, n, out);
        // Could the transmitter have overwritten what we copied (it writes up to a quarter ring
        // ahead of the clock)? Then the copy is torn: report an overflow instead.
        if (c.nowIndex() + c.capacity() / 4 + kBlock >= first + c.capacity()) {
            s->pos = c.nowIndex() - delay;
            return SOAPY_SDR_OVERFLOW;
        }
        shape(*s, out, n);
        s->pos += int64_t(n);
        s->streamed += n;
        timeNs = c.timeNsOf(first);
        flags |= SOAPY_SDR_HAS_TIME;
        return int(n);
    }

    int writeStream(SoapySDR::Stream *stream, const void *const *buffs, const size_t numElems, int &flags,
                    const long long timeNs, const long timeoutUs) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        const int inFlags = flags;
        flags = 0;
        if (!s->active || s->direction != SOAPY_SDR_TX) return SOAPY_SDR_STREAM_ERROR;
        if (s->streamed >= failAfter_) return unplugged(*s);
        Cable &c = *s->cable;
        const int64_t now = c.nowIndex();
        const int64_t startDelay = txLead(c);
        if (inFlags & SOAPY_SDR_HAS_TIME) {
            const int64_t at = c.indexOfTimeNs(timeNs);
            if (at < now) {
                s->pushStatus({SOAPY_SDR_TIME_ERROR, SOAPY_SDR_HAS_TIME, timeNs});
                s->inBurst = false;
                return SOAPY_SDR_TIME_ERROR;
            }
            s->pos = at;
            s->inBurst = true;
        } else if (!s->inBurst) {
            s->pos = now + startDelay;
            s->inBurst = true;
        } else if (s->pos < now) {
            // The burst ran dry: the device sent nothing for a while.
            s->pushStatus({SOAPY_SDR_UNDERFLOW, SOAPY_SDR_HAS_TIME, c.timeNsOf(s->pos)});
            s->pos = now + startDelay;
        }
        const int64_t ahead = c.capacity() / 4;
        const int64_t deadline = monotonicNs() + int64_t(timeoutUs) * 1000;
        int64_t room = c.nowIndex() + ahead - s->pos;
        while (room <= 0) {
            const int64_t left = deadline - monotonicNs();
            if (left <= 0) return SOAPY_SDR_TIMEOUT;
            sleepNs(std::min(c.nsUntil(s->pos - ahead + int64_t(kMtu / 4)), left));
            room = c.nowIndex() + ahead - s->pos;
        }
        size_t n = std::min<size_t>(numElems, size_t(room));
        n = std::min<size_t>(n, failAfter_ - s->streamed);
        const float amp = float(std::pow(10.0, (gainTotal(SOAPY_SDR_TX) - kUnityGainDb) / 20.0));
        c.write(s->pos, n, static_cast<const cf *>(buffs[0]), amp);
        s->pos += int64_t(n);
        s->streamed += n;
        if ((inFlags & SOAPY_SDR_END_BURST) && n == numElems) {
            s->inBurst = false;
            s->pushStatus({0, SOAPY_SDR_END_BURST, c.timeNsOf(s->pos)});
        }
        return int(n);
    }

    int readStreamStatus(SoapySDR::Stream *stream, size_t &chanMask, int &flags, long long &timeNs,
                         const long timeoutUs) override {
        auto *s = reinterpret_cast<StreamState *>(stream);
        if (s->direction != SOAPY_SDR_TX) return SOAPY_SDR_NOT_SUPPORTED;
        std::unique_lock<std::mutex> lock(s->statusMutex);
        if (!s->statusCv.wait_for(lock, std::chrono::microseconds(timeoutUs), [&] { return !s->statuses.empty(); }))
            return SOAPY_SDR_TIMEOUT;
        const Status st = s->statuses.front();
        s->statuses.pop_front();
        chanMask = 1;
        flags = st.flags;
        timeNs = st.timeNs;
        return st.code;
    }

    // Antennas.
    std::vector<std::string> listAntennas(const int direction, const size_t) const override {
        return {direction == SOAPY_SDR_RX ? "RX" : "TX"};
    }
    void setAntenna(const int direction, const size_t, const std::string &name) override {
        if (name != listAntennas(direction, 0).front()) throw std::runtime_error("loopback: no antenna " + name);
    }
    std::string getAntenna(const int direction, const size_t) const override { return listAntennas(direction, 0).front(); }

    // Gains.
    std::vector<std::string> listGains(const int direction, const size_t) const override {
        if (direction == SOAPY_SDR_RX) return {"LNA", "PGA"};
        return {"PAD"};
    }
    void setGain(const int direction, const size_t, const std::string &name, const double value) override {
        const SoapySDR::Range r = getGainRange(direction, 0, name);
        std::lock_guard<std::mutex> lock(mutex_);
        gains_[direction][name] = std::min(std::max(value, r.minimum()), r.maximum());
    }
    double getGain(const int direction, const size_t, const std::string &name) const override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = gains_[direction].find(name);
        if (it == gains_[direction].end()) throw std::runtime_error("loopback: no gain element " + name);
        return it->second;
    }
    SoapySDR::Range getGainRange(const int direction, const size_t, const std::string &name) const override {
        if (direction == SOAPY_SDR_RX && name == "LNA") return SoapySDR::Range(0.0, 30.0, 1.0);
        if (direction == SOAPY_SDR_RX && name == "PGA") return SoapySDR::Range(0.0, 40.0, 1.0);
        if (direction == SOAPY_SDR_TX && name == "PAD") return SoapySDR::Range(0.0, 70.0, 1.0);
        throw std::runtime_error("loopback: no gain element " + name);
    }

    // Frequency: one RF component.
    void setFrequency(const int direction, const size_t, const double frequency, const SoapySDR::Kwargs &) override {
        setFrequency(direction, 0, "RF", frequency, {});
    }
    void setFrequency(const int direction, const size_t, const std::string &name, const double frequency,
                      const SoapySDR::Kwargs &) override {
        if (name != "RF") throw std::runtime_error("loopback: no frequency component " + name);
        const SoapySDR::Range r = getFrequencyRange(direction, 0, name).front();
        if (!(frequency >= r.minimum() && frequency <= r.maximum()))
            throw std::runtime_error("loopback: frequency out of range");
        std::lock_guard<std::mutex> lock(mutex_);
        freq_[direction] = frequency;
        if (direction == SOAPY_SDR_TX)
            for (auto *s : streams_)
                if (s->direction == SOAPY_SDR_TX && s->active) s->cable->setTxFrequency(frequency);
    }
    double getFrequency(const int direction, const size_t) const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return freq_[direction];
    }
    double getFrequency(const int direction, const size_t, const std::string &) const override {
        return getFrequency(direction, 0);
    }
    std::vector<std::string> listFrequencies(const int, const size_t) const override { return {"RF"}; }
    SoapySDR::RangeList getFrequencyRange(const int, const size_t) const override { return {SoapySDR::Range(70e6, 6e9)}; }
    SoapySDR::RangeList getFrequencyRange(const int, const size_t, const std::string &) const override {
        return {SoapySDR::Range(70e6, 6e9)};
    }

    // Sample rate and bandwidth.
    void setSampleRate(const int direction, const size_t, const double rate) override {
        if (!(rate >= 1e5 && rate <= 61.44e6)) throw std::runtime_error("loopback: sample rate out of range");
        std::lock_guard<std::mutex> lock(mutex_);
        rate_[direction] = rate;
    }
    double getSampleRate(const int direction, const size_t) const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return rate_[direction];
    }
    SoapySDR::RangeList getSampleRateRange(const int, const size_t) const override { return {SoapySDR::Range(1e5, 61.44e6)}; }
    std::vector<double> listSampleRates(const int, const size_t) const override {
        return {1e6, 2e6, 5e6, 10e6, 20e6, 40e6};
    }
    void setBandwidth(const int direction, const size_t, const double bw) override {
        if (!(bw >= 2e5 && bw <= 56e6)) throw std::runtime_error("loopback: bandwidth out of range");
        std::lock_guard<std::mutex> lock(mutex_);
        bw_[direction] = bw;
    }
    double getBandwidth(const int direction, const size_t) const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return bw_[direction];
    }
    SoapySDR::RangeList getBandwidthRange(const int, const size_t) const override { return {SoapySDR::Range(2e5, 56e6)}; }

    // Time.
    bool hasHardwareTime(const std::string &) const override { return true; }
    // Nanoseconds since the cable's sample 0 (the time base of stream timestamps).
    long long getHardwareTime(const std::string &) const override {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto *s : streams_)
            if (s->cable) return s->cable->hardwareTimeNs();
        return monotonicNs();
    }
    std::vector<std::string> listClockSources() const override { return {"internal"}; }
    std::string getClockSource() const override { return "internal"; }

private:
    // Receive runs this far behind the clock (and a transmit burst starts half of it ahead):
    // the margin that keeps readers and writers off each other's samples.
    static int64_t rxDelay(const Cable &c) {
        return std::max<int64_t>(2 * kBlock, int64_t(c.rate() * 2e-3) / kBlock * kBlock + kBlock);
    }

    // Where a new transmit burst starts, ahead of the clock: at least past the receive delay's
    // half, at most an eighth of the ring (the writer may run a quarter ahead).
    int64_t txLead(const Cable &c) const {
        const int64_t lead = int64_t(txLeadSeconds_ * c.rate());
        return std::min(std::max(lead, rxDelay(c) / 2), c.capacity() / 8);
    }

    double gainTotal(int direction) const {
        std::lock_guard<std::mutex> lock(mutex_);
        double g = 0;
        for (const auto &kv : gains_[direction]) g += kv.second;
        return g;
    }

    int unplugged(StreamState &s) {
        if (!s.failedLogged) {
            SoapySDR_logf(SOAPY_SDR_ERROR, "loopback %s: device disconnected after %llu samples (fail_after)",
                          name_.c_str(), (unsigned long long)s.streamed);
            s.failedLogged = true;
        }
        return SOAPY_SDR_STREAM_ERROR;
    }

    // Receive path: frequency offset between the transmitter and this receiver, gain, noise.
    void shape(StreamState &s, cf *x, size_t n) {
        Cable &c = *s.cable;
        const double df = c.txFrequency() - getFrequency(SOAPY_SDR_RX, 0);
        const float amp = float(std::pow(10.0, (gainTotal(SOAPY_SDR_RX) - kUnityGainDb) / 20.0));
        if (std::abs(df) >= c.rate() / 2) {
            std::fill(x, x + n, cf(0.0f, 0.0f)); // out of band
        } else if (df != 0.0) {
            const double w = 2.0 * M_PI * df / c.rate();
            // Phase from the absolute sample index, so it is continuous across calls.
            const double ph0 = std::fmod(w * double(s.pos), 2.0 * M_PI);
            std::complex<double> r = std::polar(1.0, ph0);
            const std::complex<double> step = std::polar(1.0, w);
            for (size_t i = 0; i < n; i++) {
                if ((i & 1023) == 0) r = std::polar(1.0, std::fmod(w * double(s.pos + int64_t(i)), 2.0 * M_PI));
                x[i] *= cf(float(r.real()), float(r.imag())) * amp;
                r *= step;
            }
        } else if (amp != 1.0f) {
            for (size_t i = 0; i < n; i++) x[i] *= amp;
        }
        if (!s.noise.empty()) {
            const float sigma = float(std::pow(10.0, noiseDb_ / 20.0));
            const size_t table = s.noise.size();
            size_t i = 0;
            while (i < n) {
                const size_t start = size_t(s.rng() % table);
                const size_t k = std::min(n - i, std::min<size_t>(1024, table - start));
                for (size_t j = 0; j < k; j++) x[i + j] += s.noise[start + j] * sigma;
                i += k;
            }
        }
    }

    std::string name_, dir_;
    double bufferSeconds_ = 0.2;
    double txLeadSeconds_ = 0.02;
    double noiseDb_ = -400.0;
    uint64_t failAfter_ = UINT64_MAX;
    uint64_t stallAfter_ = UINT64_MAX;
    mutable std::mutex mutex_;
    double rate_[2]{};
    double freq_[2]{};
    double bw_[2]{};
    std::map<std::string, double> gains_[2];
    std::vector<StreamState *> streams_;
};

SoapySDR::KwargsList findLoopback(const SoapySDR::Kwargs &args) {
    SoapySDR::KwargsList out;
    for (const auto &n : configuredNames()) {
        auto it = args.find("name");
        if (it != args.end() && it->second != n) continue;
        it = args.find("serial");
        if (it != args.end() && it->second != n) continue;
        out.push_back({{"name", n}, {"serial", n}, {"label", "semcom loopback " + n}});
    }
    return out;
}

SoapySDR::Device *makeLoopback(const SoapySDR::Kwargs &args) { return new LoopbackDevice(args); }

SoapySDR::Registry registerLoopback("loopback", &findLoopback, &makeLoopback, SOAPY_SDR_ABI_VERSION);

} // namespace
