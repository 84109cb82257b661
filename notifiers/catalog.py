"""What each risk means to a policyholder, in each locale: its name, the loss it leads to, and
what to do now. The words of a preventive warning (风险预警 · 防灾减损), not of a claim.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RiskText:
    name: str
    loss: str
    actions: tuple[str, ...]


CATALOG: dict[str, dict[str, RiskText]] = {
    "zh-CN": {
        "water_leak": RiskText(
            "漏水", "水浸造成的财产损失", ("立即关闭总水阀", "检查漏水传感器附近的管道与用水设备", "移开贵重物品和电器")
        ),
        "freeze_risk": RiskText(
            "水管冻裂风险",
            "水管冻裂及随之而来的水浸损失",
            (
                "保持室内供暖，夜间温度不低于5 °C",
                "打开靠外墙的橱柜门让暖气进入",
                "让水龙头保持细流",
                "若将离家，关闭总水阀并排空管道",
            ),
        ),
        "harsh_braking": RiskText("急刹车", "追尾等交通事故", ("与前车保持至少3秒车距", "提前观察路况，平稳减速")),
        "speeding": RiskText("超速行驶", "交通事故与违章", ("请降低车速至限速以内", "注意路口与学校区域")),
        "driver_fatigue": RiskText(
            "疲劳驾驶", "疲劳导致的交通事故", ("请在最近的服务区停车休息至少20分钟", "连续驾驶不超过4小时")
        ),
        "slow_leak": RiskText(
            "持续渗漏",
            "隐蔽漏水导致的墙体、地板受损和霉变",
            ("关闭所有用水设备后查看水表是否仍在转动", "检查马桶水箱、热水器和暗管", "必要时关闭总水阀并联系维修"),
        ),
        "burst_pipe": RiskText(
            "爆管",
            "大量进水造成的严重水浸损失",
            ("立即关闭总水阀", "切断受影响区域的电源", "联系维修人员，我们可协助安排"),
        ),
        "mould_risk": RiskText(
            "潮湿发霉风险",
            "霉变造成的装修与物品损失及健康影响",
            ("开窗通风或开启除湿机", "将湿度控制在60%以下", "检查是否有隐蔽渗漏"),
        ),
        "fire_risk": RiskText(
            "火灾隐患",
            "火灾造成的重大财产与人身损失",
            ("确认人员安全，必要时立即拨打119", "切断相关电器电源", "不要使用电梯"),
        ),
        "power_cut": RiskText(
            "停电",
            "冰箱食品变质、排水泵停转导致的水浸",
            ("检查配电箱是否跳闸", "减少开启冰箱/冰柜门", "如停电持续，准备备用电源或转移物品"),
        ),
        "bearing_failure": RiskText(
            "设备轴承故障风险", "设备停机与损坏", ("安排检修并检查润滑", "降低负载运行，准备备件", "振动继续上升时停机")
        ),
        "coldchain_failure": RiskText(
            "冷链温度失控", "货物变质损失", ("检查压缩机与电源", "确认厢门已关好", "必要时将货物转移到备用冷库")
        ),
        "battery_drain": RiskText("设备电量不足", "设备离线后无法继续为您预警", ("请尽快更换电池或为设备充电",)),
        "sensor_stuck": RiskText(
            "传感器读数异常", "传感器失灵后风险无法被发现", ("检查传感器是否被遮挡或损坏", "必要时重启或更换传感器")
        ),
    },
    "en": {
        "water_leak": RiskText(
            "Water leak",
            "water damage to your property",
            (
                "Turn off the main water valve now",
                "Check pipes and appliances near the leak sensor",
                "Move valuables and electrical items away",
            ),
        ),
        "freeze_risk": RiskText(
            "Frozen pipe risk",
            "a burst pipe and the water damage it brings",
            (
                "Keep the heating on, at least 5 °C overnight",
                "Open cupboard doors on outside walls",
                "Let a tap drip",
                "If you are away, shut the main valve and drain the pipes",
            ),
        ),
        "harsh_braking": RiskText(
            "Harsh braking",
            "a rear-end collision",
            ("Keep at least a 3-second gap to the car ahead", "Look further ahead and slow down smoothly"),
        ),
        "speeding": RiskText(
            "Speeding", "a crash and fines", ("Slow down to the speed limit", "Take care near junctions and schools")
        ),
        "driver_fatigue": RiskText(
            "Driver fatigue",
            "a fatigue-related crash",
            (
                "Stop at the next service area and rest for at least 20 minutes",
                "Do not drive more than 4 hours without a break",
            ),
        ),
        "slow_leak": RiskText(
            "Continuous slow leak",
            "hidden water damage to walls, floors and mould",
            (
                "Turn off all taps and check whether the water meter still moves",
                "Check toilet cisterns, the water heater and concealed pipes",
                "If needed, shut the main valve and call a plumber",
            ),
        ),
        "burst_pipe": RiskText(
            "Burst pipe",
            "severe flooding",
            (
                "Turn off the main water valve now",
                "Switch off power in the affected area",
                "Call a plumber; we can help arrange one",
            ),
        ),
        "mould_risk": RiskText(
            "Damp and mould risk",
            "mould damage to fittings and belongings, and to health",
            ("Ventilate or run a dehumidifier", "Keep humidity below 60%", "Look for a hidden leak"),
        ),
        "fire_risk": RiskText(
            "Fire hazard",
            "a fire with major damage and danger to people",
            (
                "Make sure everyone is safe; call the fire service if needed",
                "Switch off the appliances concerned",
                "Do not use the lift",
            ),
        ),
        "power_cut": RiskText(
            "Power cut",
            "spoiled freezer contents or flooding when the sump pump stops",
            (
                "Check the fuse box for a tripped breaker",
                "Keep the freezer closed",
                "If it lasts, arrange backup power or move goods",
            ),
        ),
        "bearing_failure": RiskText(
            "Bearing failure risk",
            "machine breakdown and downtime",
            (
                "Schedule maintenance and check lubrication",
                "Reduce load and prepare spare parts",
                "Stop the machine if vibration keeps rising",
            ),
        ),
        "coldchain_failure": RiskText(
            "Cold-chain temperature out of range",
            "spoiled goods",
            (
                "Check the compressor and its power",
                "Make sure the door is closed",
                "Move goods to backup cold storage if needed",
            ),
        ),
        "battery_drain": RiskText(
            "Low device battery",
            "the device goes offline and can no longer warn you",
            ("Replace or charge the device battery soon",),
        ),
        "sensor_stuck": RiskText(
            "Sensor reading stuck",
            "a failed sensor hides real risks",
            ("Check the sensor is not covered or damaged", "Restart or replace it if needed"),
        ),
    },
}

SEVERITY_TEXT = {
    "zh-CN": {"advisory": "提示", "warning": "预警", "critical": "紧急"},
    "en": {"advisory": "Advisory", "warning": "Warning", "critical": "Critical"},
}

# How evidence keys read in a message: label per locale and unit.
EVIDENCE_LABELS = {
    "zh-CN": {
        "pipe_temp_c": ("水管温度", "°C"),
        "trend_c_per_h": ("降温速度", "°C/小时"),
        "temp_c": ("温度", "°C"),
        "flow_lpm": ("水流量", "升/分钟"),
        "humidity_pct": ("湿度", "%"),
        "accel_long_g": ("减速度", "g"),
        "decel_g": ("减速度", "g"),
        "speed_kmh": ("车速", "公里/小时"),
        "speed_limit_kmh": ("限速", "公里/小时"),
        "drive_h": ("连续驾驶", "小时"),
        "vibration_mm_s": ("振动", "毫米/秒"),
        "bearing_temp_c": ("轴承温度", "°C"),
        "mains_v": ("市电电压", "V"),
        "co_ppm": ("一氧化碳", "ppm"),
        "battery_pct": ("电量", "%"),
        "events_last_hour": ("近一小时次数", ""),
        "duration_min": ("持续", "分钟"),
    },
    "en": {
        "pipe_temp_c": ("pipe temperature", "°C"),
        "trend_c_per_h": ("cooling rate", "°C/h"),
        "temp_c": ("temperature", "°C"),
        "flow_lpm": ("water flow", "l/min"),
        "humidity_pct": ("humidity", "%"),
        "accel_long_g": ("deceleration", "g"),
        "decel_g": ("deceleration", "g"),
        "speed_kmh": ("speed", "km/h"),
        "speed_limit_kmh": ("speed limit", "km/h"),
        "drive_h": ("continuous driving", "h"),
        "vibration_mm_s": ("vibration", "mm/s"),
        "bearing_temp_c": ("bearing temperature", "°C"),
        "mains_v": ("mains voltage", "V"),
        "co_ppm": ("carbon monoxide", "ppm"),
        "battery_pct": ("battery", "%"),
        "events_last_hour": ("events in the last hour", ""),
        "duration_min": ("lasting", "min"),
    },
}
