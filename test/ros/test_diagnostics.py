"""FrameStats.assess: one diagnostics period's values and problems, worked by hand."""

from sr3d_ros.diagnostics import FrameStats


def test_periods_by_hand():
    s = FrameStats()
    s.start_period(100.0)
    s.received, s.processed, s.dropped, s.tf_failures = 10, 7, 1, 2
    s.processing_ms.extend([10.0, 30.0])
    s.model_ms.extend([5.0, 7.0])
    s.latency_ms.extend([100.0, 300.0, 2000.0])
    values, problems, silent = s.assess(102.0, max_processing_time_ms=15.0, max_input_age_ms=1000.0, subscribed=True)
    assert values["input_rate_hz"] == "5.00" and values["processing_time_ms"] == "20.0"
    assert values["model_time_ms"] == "6.0" and values["pipeline_latency_ms_p50"] == "300.0"
    assert (values["frames_received"], values["frames_dropped"], values["tf_failures"]) == ("10", "1", "2")
    # TF failed this period, processing 20 > 15 ms; the 3 newest latencies (median 300 ms) are not stale.
    assert problems == ["TF lookups failing", "processing 20 ms > 15 ms"] and not silent
    # Next period: nothing new arrived while subscribed; the old failures no longer count.
    s.malformed["missing_color"] = 1
    values, problems, silent = s.assess(103.0, 100.0, 1000.0, subscribed=True)
    assert values["malformed.missing_color"] == "1" and values["input_rate_hz"] == "0.00"
    assert problems == ["malformed inputs", "no input"] and silent
    assert s.assess(104.0, 100.0, 1000.0, subscribed=False)[1:] == ([], False)
    assert s.counters() == {
        "frames_received": 10,
        "frames_processed": 7,
        "frames_dropped": 1,
        "malformed_inputs": 1,
        "tf_failures": 2,
        "errors": 0,
        "points_out_of_range": 0,
    }
