#include "measured_scale.h"

#include <chrono>
#include <utility>

#include "pingma/common/prometheus.h"

namespace pingma::station {
namespace {

class MeasuredScale : public Scale {
 public:
  MeasuredScale(std::unique_ptr<Scale> scale, ScaleCounters* counters)
      : scale_(std::move(scale)), counters_(counters) {}

  Status Connect() override {
    return Timed(ScaleOperation::kConnect, [&] { return scale_->Connect(); });
  }
  void Disconnect() override { scale_->Disconnect(); }
  bool connected() const override { return scale_->connected(); }
  Result<ScaleReading> Read() override {
    return Timed(ScaleOperation::kRead, [&] { return scale_->Read(); });
  }
  Status WriteCutoff(double gross_kg) override {
    return Timed(ScaleOperation::kCutoff, [&] { return scale_->WriteCutoff(gross_kg); });
  }
  Status SetInterlock(bool unlocked) override {
    return Timed(ScaleOperation::kInterlock, [&] { return scale_->SetInterlock(unlocked); });
  }
  Status Send(ScaleCommand command) override {
    return Timed(ScaleOperation::kCommand, [&] { return scale_->Send(command); });
  }
  bool has_signals() const override { return scale_->has_signals(); }
  Status WriteSignals(const ScaleSignals& signals) override {
    if (!scale_->has_signals()) return scale_->WriteSignals(signals);  // no request made
    return Timed(ScaleOperation::kSignals, [&] { return scale_->WriteSignals(signals); });
  }
  std::string Describe() const override { return scale_->Describe(); }

 private:
  template <typename F>
  auto Timed(ScaleOperation operation, F&& call) -> decltype(call()) {
    const auto start = std::chrono::steady_clock::now();
    auto result = call();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ScaleCounters::PerOperation& o = counters_->operations[static_cast<size_t>(operation)];
    ++o.calls;
    if (!result.ok()) ++o.failures;
    o.micros += static_cast<std::uint64_t>(seconds * 1e6);
    ++o.buckets[prometheus::BucketOf(kScaleTimeBounds, seconds)];
    return result;
  }

  std::unique_ptr<Scale> scale_;
  ScaleCounters* counters_;
};

}  // namespace

std::unique_ptr<Scale> Measured(std::unique_ptr<Scale> scale, ScaleCounters* counters) {
  return std::make_unique<MeasuredScale>(std::move(scale), counters);
}

}  // namespace pingma::station
