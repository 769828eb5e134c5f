import Foundation

/// The figures of a finished run, computed from the ledger, the faults applied and the
/// resource samples, printed as plain text, with the list of failed targets.
struct SoakReport {
  /// A call that completes later than its deadline plus this is late.
  static let latenessNanoseconds: Int64 = 250_000_000
  /// A call issued in a fault or this long after its end belongs to that fault's window.
  static let faultWindowTail: Int64 = 2_000_000_000

  let options: SoakOptions
  let entries: CallLedger.Entries
  /// Calls completed more than once, counted again after the connection was closed.
  let duplicatedAtExit: Int
  let faults: [FaultRunner.Applied]
  let samples: [ResourceSampler.Sample]
  /// When the calls stopped, from the soak's start.
  let runEnd: Int64
  /// Calls not issued because a driver fell behind (the machine was busy).
  let skipped: Int

  private var deadlineNanoseconds: Int64 { Int64(options.deadlineMilliseconds) * 1_000_000 }

  /// Prints the report; returns the targets that failed (empty: the soak passed).
  func print() -> [String] {
    var failures: [String] = []
    let issued = entries.issued
    let forms = CallLedger.Form.allCases.map { form in
      (0..<issued).lazy.filter { entries.form[$0] == form.rawValue }.count
    }
    emit(
      "calls issued: \(issued) (callback \(forms[0]), async \(forms[1])); "
        + "skipped because a driver fell > 100 ms behind: \(skipped)")

    // Outcomes of the first completion, per form.
    emit("outcomes:")
    emit(row(["outcome", "callback", "async", "total"], widths: [-40, 10, 10, 10]))
    var byOutcome: [Int: [Int]] = [:]  // label index (255: not completed) -> per form
    for id in 0..<issued {
      byOutcome[Int(entries.outcome[id]), default: [0, 0]][Int(entries.form[id])] += 1
    }
    for (index, counts) in byOutcome.sorted(by: { $0.value.reduce(0, +) > $1.value.reduce(0, +) }) {
      let label = index < entries.labels.count ? entries.labels[index] : "(not completed)"
      emit(
        row(
          [label, "\(counts[0])", "\(counts[1])", "\(counts[0] + counts[1])"],
          widths: [-40, 10, 10, 10]))
    }

    let lost = (0..<issued).filter { entries.completions[$0] == 0 }
    let duplicated = max(
      duplicatedAtExit, (0..<issued).filter { entries.completions[$0] > 1 }.count)
    let wrong =
      entries.labelIndex["call: WRONG_REPLY"].map { index in
        (0..<issued).filter { entries.outcome[$0] == index }.count
      } ?? 0
    emit(
      "lost (not completed by deadline + 5 s after the run): \(lost.count)"
        + (lost.isEmpty ? "" : ", first ids \(lost.prefix(10))"))
    emit("completed twice or more: \(duplicated)")
    emit("wrong replies: \(wrong)")
    if !lost.isEmpty { failures.append("\(lost.count) calls lost") }
    if duplicated > 0 { failures.append("\(duplicated) calls completed more than once") }
    if wrong > 0 { failures.append("\(wrong) replies differ from their request") }
    if entries.refused > 0 {
      failures.append("\(entries.refused) calls not made: the ledger was full")
    }

    failures += printLatency(issued: issued)
    failures += printFaults(issued: issued)
    failures += printResources()
    return failures
  }

  private func printLatency(issued: Int) -> [String] {
    var latencies: [Int64] = []
    var okLatencies: [Int64] = []
    latencies.reserveCapacity(issued)
    okLatencies.reserveCapacity(issued)
    var late: [Int] = []
    let lateAfter = deadlineNanoseconds + Self.latenessNanoseconds
    let ok = entries.labelIndex["OK"]
    for id in 0..<issued where entries.completedAt[id] >= 0 {
      let latency = entries.completedAt[id] - entries.issuedAt[id]
      latencies.append(latency)
      if entries.outcome[id] == ok { okLatencies.append(latency) }
      if latency > lateAfter { late.append(id) }
    }
    latencies.sort()
    okLatencies.sort()
    func percentiles(_ sorted: [Int64]) -> String {
      func percentile(_ p: Double) -> String {
        guard !sorted.isEmpty else { return "-" }
        let rank = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
        return milliseconds(sorted[rank])
      }
      return "p50 \(percentile(0.50)), p99 \(percentile(0.99)), p99.9 \(percentile(0.999)), "
        + "max \(sorted.last.map(milliseconds) ?? "-")"
    }
    emit("latency, issue to first completion: all calls \(percentiles(latencies))")
    emit("                                    OK calls  \(percentiles(okLatencies))")
    let worst = (latencies.last ?? 0) - deadlineNanoseconds
    emit(
      "late (completed > deadline + \(Self.latenessNanoseconds / 1_000_000) ms): "
        + "\(late.count); worst: \(worst > 0 ? milliseconds(worst) + " past the deadline" : "none past the deadline")"
    )
    if !late.isEmpty {
      var byWindow: [String: Int] = [:]
      for id in late { byWindow[window(of: entries.issuedAt[id]), default: 0] += 1 }
      for (window, count) in byWindow.sorted(by: { $0.key < $1.key }) {
        emit("  issued in \(window): \(count)")
      }
      return [
        "\(late.count) calls completed later than deadline + 250 ms (worst \(milliseconds(worst)) past)"
      ]
    }
    return []
  }

  /// "fault #3 (server-kill)" when `issuedAt` is inside a fault or within 2 s after its end.
  private func window(of issuedAt: Int64) -> String {
    for (index, fault) in faults.enumerated()
    where issuedAt >= fault.began && issuedAt <= fault.ended + Self.faultWindowTail {
      return "fault #\(index + 1) (\(fault.kind.rawValue))"
    }
    return "no fault window"
  }

  /// Recovery: from a fault's end to the completion of the first successful call issued
  /// after that end (and before the next fault).
  private func printFaults(issued: Int) -> [String] {
    emit("faults (recovery: from the fault's end to the first OK call issued after it):")
    emit(
      row(
        ["#", "kind", "start s", "length s", "recovery ms", "failed calls"],
        widths: [3, -12, 9, 9, 12, 13]))
    let ok = entries.labelIndex["OK"]
    var unrecovered = 0
    var recoveries: [Int64] = []
    for (index, fault) in faults.enumerated() {
      let until = index + 1 < faults.count ? faults[index + 1].began : runEnd
      let inWindow = (0..<issued).filter {
        entries.issuedAt[$0] >= fault.began && entries.issuedAt[$0] < until
      }
      let firstOK = inWindow.lazy
        .filter { entries.outcome[$0] == ok && entries.issuedAt[$0] >= fault.ended }
        .map { entries.completedAt[$0] }.min()
      // Calls that failed from the fault's start until the system worked again.
      let failed = inWindow.filter {
        entries.outcome[$0] != ok && entries.issuedAt[$0] < (firstOK ?? until)
      }.count
      let recovery = firstOK.map { $0 - fault.ended }
      if let recovery { recoveries.append(recovery) } else { unrecovered += 1 }
      emit(
        row(
          [
            "\(index + 1)", fault.kind.rawValue, fixed(Double(fault.began) / 1e9, 1),
            fixed(Double(fault.ended - fault.began) / 1e9, 2),
            recovery.map { fixed(Double($0) / 1e6, 1) } ?? "never", "\(failed)",
          ], widths: [3, -12, 9, 9, 12, 13]))
    }
    if let longest = recoveries.max() {
      emit(
        "recovery: \(recoveries.count) of \(faults.count) faults, longest \(milliseconds(longest)), "
          + "median \(milliseconds(recoveries.sorted()[recoveries.count / 2]))")
    }
    return unrecovered > 0
      ? ["\(unrecovered) faults without a successful call before the next one"] : []
  }

  private func printResources() -> [String] {
    emit("resources (VmRSS and /proc/self/fd; baseline: the sample before the first fault):")
    let baselineAt = Int64(FaultPlan.baselineSample.components.seconds) * 1_000_000_000
    guard
      let baseline = samples.firstIndex(where: { $0.at >= baselineAt }) ?? samples.indices.first,
      let last = samples.last
    else {
      return ["no resource samples"]
    }
    emit(row(["t s", "VmRSS MiB", "fds", "in flight", ""], widths: [8, 10, 6, 10, -1]))
    for (index, sample) in samples.enumerated() {
      let note =
        index == baseline ? "baseline" : index == samples.count - 1 ? "end, after the drain" : ""
      emit(
        row(
          [
            fixed(Double(sample.at) / 1e9, 1), fixed(Double(sample.residentKiB) / 1024, 1),
            "\(sample.openDescriptors)", "\(sample.callsInFlight)", note,
          ], widths: [8, 10, 6, 10, -1]))
    }
    let first = samples[baseline]
    let residentGrowth = Double(last.residentKiB - first.residentKiB) / 1024
    let descriptorGrowth = last.openDescriptors - first.openDescriptors
    emit(
      "growth from t = \(fixed(Double(first.at) / 1e9, 1)) s to the end: VmRSS \(signed(residentGrowth)) MiB "
        + "(bound \(options.residentGrowthMiB)), fds \(descriptorGrowth >= 0 ? "+" : "")\(descriptorGrowth) "
        + "(bound \(options.descriptorGrowth))")
    var failures: [String] = []
    if let middle = samples.first(where: { $0.at >= runEnd / 2 }) {
      let secondHalf = Double(last.residentKiB - middle.residentKiB) / 1024
      emit(
        "VmRSS growth over the second half (from t = \(fixed(Double(middle.at) / 1e9, 1)) s): "
          + "\(signed(secondHalf)) MiB (bound \(options.residentSecondHalfGrowthMiB))")
      if secondHalf > Double(options.residentSecondHalfGrowthMiB) {
        failures.append(
          "VmRSS grew by \(fixed(secondHalf, 1)) MiB over the second half "
            + "(bound \(options.residentSecondHalfGrowthMiB))")
      }
    }
    if residentGrowth > Double(options.residentGrowthMiB) {
      failures.append(
        "VmRSS grew by \(fixed(residentGrowth, 1)) MiB (bound \(options.residentGrowthMiB))")
    }
    if descriptorGrowth > options.descriptorGrowth {
      failures.append(
        "open descriptors grew by \(descriptorGrowth) (bound \(options.descriptorGrowth))")
    }
    return failures
  }

  private func emit(_ line: String) { Swift.print(line) }

  private func milliseconds(_ nanoseconds: Int64) -> String {
    fixed(Double(nanoseconds) / 1e6, 1) + " ms"
  }

  private func signed(_ value: Double) -> String { (value >= 0 ? "+" : "") + fixed(value, 1) }

  /// Columns padded to `widths`; a negative width aligns left.
  private func row(_ cells: [String], widths: [Int]) -> String {
    zip(cells, widths).map { cell, width in
      let pad = String(repeating: " ", count: max(0, abs(width) - cell.count))
      return width < 0 ? cell + pad : pad + cell
    }.joined(separator: " ")
  }
}

func fixed(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }
