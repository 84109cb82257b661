"""What each risk means to a policyholder, in each locale: its name, the loss it leads to, why
we think it is coming, how long is left and what to do now. The words of a preventive warning
(风险预警 · 防灾减损), not of a claim — but for a crash (``vehicle_crash``), a loss that has
happened: its words put safety first and say the insurer's claims desk is on its way.

``why`` maps each judgement a detector can fire on (the evidence's ``triggers``; a detector
that judges one way has one entry) to a Jinja phrase that states the figures that fired it.
A phrase sees the evidence's keys as variables and these filters: ``num(digits)`` (a figure,
trailing zeros dropped), ``duration`` (seconds → "3 h 20 min" / "3小时20分钟"); the sentences
that say how long is left also see ``loss``, ``time_left`` and ``time_at``. ``forecast``,
``now`` and ``standing`` replace the locale's generic sentence (:data:`OUTLOOK`) where it
would not read right for this risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RiskText:
    name: str
    """What: the risk's name, as a title shows it."""
    loss: str
    """The loss it leads to: a noun phrase ("a burst pipe and the water damage it brings")."""
    actions: tuple[str, ...]
    """What to do now, the most urgent first."""
    why: Mapping[str, str] = field(default_factory=dict)
    """Trigger → a phrase of the evidence that fired it."""
    forecast: str | None = None
    """How long, when the detector forecasts the loss (default ``OUTLOOK[locale]["forecast"]``)."""
    now: str | None = None
    """How long, when the loss is under way or due now (default ``OUTLOOK[locale]["now"]``)."""
    standing: str | None = None
    """How long, when there is no forecast (default ``OUTLOOK[locale]["standing"]``)."""


OUTLOOK: dict[str, dict[str, str]] = {
    "zh-CN": {
        "forecast": "如不处理，预计约{{ time_left }}后（{{ time_at }}前后）可能发生{{ loss }}。",
        "now": "风险正在发生，可能导致{{ loss }}，请立即处理。",
        "standing": "如不处理，可能导致{{ loss }}，请尽快处理。",
    },
    "en": {
        "forecast": "If nothing is done, {{ loss }} may follow in about {{ time_left }} (around {{ time_at }}).",
        "now": "It is happening now and can cause {{ loss }}: act immediately.",
        "standing": "Left alone, it can lead to {{ loss }}: please act soon.",
    },
}
"""How long is left, in each locale, for a risk without words of its own."""

CATALOG: dict[str, dict[str, RiskText]] = {
    "zh-CN": {
        "water_leak": RiskText(
            "漏水",
            "水浸造成的财产损失",
            ("立即关闭总水阀", "检查漏水传感器附近的管道与用水设备", "移开贵重物品和电器"),
            why={"wet": "漏水传感器检测到积水{% if wet_for_s >= 60 %}，已持续{{ wet_for_s | duration }}{% endif %}"},
            now="风险正在发生：地面已有积水，正在导致{{ loss }}，请立即关闭总水阀。",
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
            why={
                "cooling": "水管温度{{ pipe_temp_c | num(1) }}°C"
                "{% if water_drawn is defined %}（正在用水）{% endif %}"
                "{% if trend_c_per_h is defined and trend_c_per_h < 0 %}，"
                "{% if water_drawn is defined %}不用水时{% endif %}"
                "每小时下降{{ trend_c_per_h | abs | num(1) }}°C"
                "{% elif forecast_made_at_s is defined %}，最近一次用水前水温一直在下降{% endif %}"
                "（冰点{{ freeze_c | num(1) }}°C）"
            },
            now="水管内的水已接近冰点，随时可能结冰，造成{{ loss }}。",
        ),
        "harsh_braking": RiskText(
            "急刹车",
            "追尾等交通事故",
            ("与前车保持至少3秒车距", "提前观察路况，平稳减速"),
            why={
                "braking": "检测到急刹车，减速度{{ decel_g | num(2) }}g"
                "{% if speed_kmh is defined and speed_kmh > 0 %}（车速{{ speed_kmh | num(0) }}公里/小时）{% endif %}"
                "{% if events_last_hour > 1 %}，近一小时已有{{ events_last_hour }}次{% endif %}"
            },
            standing="急刹车往往意味着跟车过近，会增加{{ loss }}的风险，请在接下来的行程中多加注意。",
        ),
        "speeding": RiskText(
            "超速行驶",
            "交通事故与违章",
            ("请降低车速至限速以内", "注意路口与学校区域"),
            why={
                "over_limit": "车速{{ speed_kmh | num(0) }}公里/小时，"
                "超出限速（{{ speed_limit_kmh | num(0) }}公里/小时）{{ over_pct | num(0) }}%，已持续"
                "{% if over_for_s >= 60 %}{{ over_for_s | duration }}{% else %}{{ over_for_s | num(0) }}秒{% endif %}"
            },
            standing="超速会增加交通事故的风险和严重程度，请立即减速。",
        ),
        "driver_fatigue": RiskText(
            "疲劳驾驶",
            "疲劳导致的交通事故",
            ("请在最近的服务区停车休息至少20分钟", "连续驾驶不超过4小时"),
            why={
                "driving": "您已连续驾驶{{ driving_for_s | duration }}，中途未充分休息"
                "{% if night %}，且正值夜间{% endif %}"
            },
            forecast="约{{ time_left }}后（{{ time_at }}前后）您将连续驾驶满{{ max_drive_s | duration }}，"
            "此后因疲劳发生交通事故的风险将明显上升。",
            now="您已超过连续驾驶{{ max_drive_s | duration }}的安全上限，现在因疲劳发生交通事故的风险很高。",
        ),
        "vehicle_crash": RiskText(
            "车辆碰撞事故",
            "人员受伤和车辆损坏",
            (
                "安全第一：开启危险报警灯，人员撤离到护栏外等安全地点，在车后方放置警告标志",
                "如有人受伤，请立即拨打120急救电话；报警请拨打122（交通事故）或110",
                "在确保安全的前提下拍摄现场、车辆和对方车牌照片，不要私下承诺责任",
                "保险公司理赔专线正在与您联系，请保持电话畅通",
            ),
            why={
                "impact": "车辆传感器检测到{{ impact_g | num(1) }}g的撞击"
                "{% if speed_before_kmh is defined and speed_before_kmh > 0 %}"
                "（撞击前车速{{ speed_before_kmh | num(0) }}公里/小时）{% endif %}，"
                "随后车辆{% if stopped_after_s >= 1 %}在{{ stopped_after_s | num(0) }}秒内{% endif %}停止"
            },
            now="看起来您的车辆发生了碰撞事故。请先确保人身安全，理赔工作我们会协助您处理。",
        ),
        "slow_leak": RiskText(
            "持续渗漏",
            "隐蔽漏水导致的墙体、地板受损和霉变",
            ("关闭所有用水设备后查看水表是否仍在转动", "检查马桶水箱、热水器和暗管", "必要时关闭总水阀并联系维修"),
            why={
                "never_stops": "用水已连续{{ flowing_for_s | duration }}从未停止，"
                "最低流量{{ min_flow_lpm | num(2) }}升/分钟，累计约{{ lost_litres | num(0) }}升"
            },
            standing="渗漏不会自行停止，持续越久损失越大，请于今天内检查。",
        ),
        "burst_pipe": RiskText(
            "爆管",
            "大量进水造成的严重水浸损失",
            ("立即关闭总水阀", "切断受影响区域的电源", "联系维修人员，我们可协助安排"),
            why={
                "high_flow": "水流量{{ flow_lpm | num(1) }}升/分钟，远超正常用水"
                "{% if high_flow_for_s >= 60 %}，已持续{{ high_flow_for_s | duration }}、"
                "约{{ lost_litres | num(0) }}升{% endif %}"
                "{% if water_leak %}，且漏水传感器检测到积水{% endif %}"
            },
        ),
        "mould_risk": RiskText(
            "潮湿发霉风险",
            "霉变造成的装修与物品损失及健康影响",
            ("开窗通风或开启除湿机", "将湿度控制在60%以下", "检查是否有隐蔽渗漏"),
            why={
                "humid": "室内湿度已连续{{ humid_for_s | duration }}高于{{ threshold_pct | num(0) }}%，"
                "当前{{ humidity_pct | num(1) }}%"
            },
            standing="潮湿持续越久霉变越严重，请在几天内通风除湿。",
        ),
        "fire_risk": RiskText(
            "火灾隐患",
            "火灾造成的重大财产与人身损失",
            ("确认人员安全，必要时立即拨打119", "切断相关电器电源", "不要使用电梯"),
            why={
                "smoke": "{% if smoke %}烟雾报警器已报警{% endif %}",
                "hot": "室温已达{{ temp_c | num(1) }}°C，超过{{ hot_c | num(0) }}°C的报警温度",
                "temp_rise": "室温在{{ rise_window_s | duration }}内上升了{{ temp_rise_c | num(1) }}°C，"
                "现为{{ temp_c | num(1) }}°C，升温异常迅速",
                "co": "一氧化碳浓度{{ co_ppm | num(0) }}ppm（报警值{{ co_limit_ppm | num(0) }}ppm）",
            },
            now="可能已发生火情，几分钟内即可能造成重大财产损失和人身伤害，请立即处理。",
            standing="火情可能在几分钟内发展，请立即查看现场。",
        ),
        "power_cut": RiskText(
            "停电",
            "冰箱食品变质、排水泵停转导致的水浸",
            ("检查配电箱是否跳闸", "减少开启冰箱/冰柜门", "如停电持续，准备备用电源或转移物品"),
            why={"outage": "市电已中断{{ outage_for_s | duration }}（电压{{ mains_v | num(0) }}伏）"},
            forecast="关闭的冰柜断电后约可保冷{{ hold_s | duration }}：约{{ time_left }}后（{{ time_at }}前后）"
            "食品可能开始变质，其间排水泵也无法工作。",
            now="停电时间已超过冰柜可保冷的{{ hold_s | duration }}，食品可能正在变质，排水泵也无法工作。",
        ),
        "bearing_failure": RiskText(
            "设备轴承故障风险",
            "设备损坏与停机",
            ("安排检修并检查润滑", "降低负载运行，准备备件", "振动继续上升时停机"),
            why={
                "zone_d": "振动持续在{{ vibration_held_mm_s | num(2) }}毫米/秒以上，"
                "超过{{ critical_mm_s | num(1) }}毫米/秒的危险限值（ISO D区）",
                "zone_c": "振动约{{ vibration_level_mm_s | num(2) }}毫米/秒，"
                "已进入{{ warning_mm_s | num(1) }}毫米/秒起的报警区（ISO C区）",
                "trend": "振动每天上升{{ trend_mm_s_per_day | num(1) }}毫米/秒"
                "（当前{{ vibration_mm_s | num(2) }}毫米/秒）{% if vibration_mm_s < critical_mm_s %}，"
                "正趋向{{ critical_mm_s | num(1) }}毫米/秒的危险限值{% endif %}",
                "baseline": "振动{{ vibration_mm_s | num(2) }}毫米/秒，"
                "是正常水平（{{ baseline_mm_s | num(2) }}毫米/秒）的{{ ratio_to_baseline | num(1) }}倍",
                "bearing_hot": "轴承温度{{ bearing_temp_c | num(1) }}°C，已超过{{ bearing_limit_c | num(0) }}°C",
            },
            forecast="{% if seizure_mm_s is defined %}振动每小时增长约{{ growth_pct_per_h | num(0) }}%，按此速度，"
            "约{{ time_left }}后（{{ time_at }}前后）振动将达到约{{ seizure_mm_s | num(0) }}毫米/秒，"
            "轴承可能卡死，导致{{ loss }}；也可能提前发生。"
            "{% else %}按此趋势，约{{ time_left }}后（{{ time_at }}前后）振动将达到危险限值，"
            "此后随时可能发生{{ loss }}。{% endif %}",
            now="设备已处于危险状态，随时可能发生{{ loss }}。",
            standing="轴承出现这种状况通常会继续恶化，请在几天内安排检修。",
        ),
        "coldchain_failure": RiskText(
            "冷链温度失控",
            "货物变质损失",
            ("检查压缩机与电源", "确认厢门已关好", "必要时将货物转移到备用冷库"),
            why={
                "above_limit": "厢门关闭状态下，箱内温度高于{{ max_c | num(1) }}°C"
                "已达{{ excursion_for_s | duration }}，当前{{ temp_c | num(1) }}°C",
                "warming": "箱内温度{{ temp_c | num(1) }}°C"
                "{% if trend_c_per_h is defined %}，正以每小时{{ trend_c_per_h | num(1) }}°C的速度升温"
                "{% else %}，开门前一直在升温{% endif %}"
                "{% if compressor_on is defined %}{% if compressor_on %}，压缩机运行中仍无法降温"
                "{% else %}，压缩机已停机{% if compressor_off_for_s >= 60 %}{{ compressor_off_for_s | duration }}"
                "{% endif %}{% endif %}{% endif %}",
            },
            forecast="按此速度，约{{ time_left }}后（{{ time_at }}前后）箱内温度将超过{{ max_c | num(1) }}°C，"
            "货物开始变质。",
            now="箱内温度已超过{{ max_c | num(1) }}°C，货物可能正在变质。",
        ),
        "battery_drain": RiskText(
            "设备电量不足",
            "设备离线、无法继续为您预警",
            ("请尽快更换电池或为设备充电",),
            why={
                "empty": "设备电量仅剩{{ battery_pct | num(1) }}%",
                "draining": "设备电量{{ battery_pct | num(1) }}%，每小时下降{{ drain_pct_per_h | num(1) }}%",
                "low": "设备电量{{ battery_pct | num(1) }}%，已低于{{ low_pct | num(1) }}%",
            },
            forecast="按此速度，约{{ time_left }}后（{{ time_at }}前后）电池将耗尽，设备离线后将无法继续为您预警。",
            now="电池即将耗尽，设备随时可能离线，之后将无法继续为您预警。",
            standing="电池耗尽后设备将离线，无法继续为您预警，请尽快处理。",
        ),
        "sensor_stuck": RiskText(
            "传感器读数异常",
            "真实风险无法被及时发现",
            ("检查传感器是否被遮挡或损坏", "必要时重启或更换传感器"),
            why={
                "flat": "{{ metric_name }}传感器已连续{{ flat_for_s | duration }}读数固定为{{ metric_value }}"
                "（连续{{ readings }}次读数没有任何变化）"
            },
            standing="传感器卡住期间无法为您发现真实风险，请于今天内检查。",
        ),
        "device_silent": RiskText(
            "设备失联",
            "漏水、火情等风险发生时无法及时向您预警",
            ("检查设备电源和网络连接", "确认设备未被移动、遮挡或损坏", "必要时重启设备，仍无法恢复请联系我们"),
            why={
                "silent": "{% if reason == 'offline' %}设备已报告离线"
                "{% if duration_min is defined %}，{{ (duration_min * 60) | duration }}未恢复{% endif %}"
                "{% else %}已连续{{ (duration_min * 60) | duration }}未收到设备的任何数据"
                "{% if usual_interval_s is defined %}（平时每"
                "{% if usual_interval_s >= 60 %}{{ usual_interval_s | duration }}"
                "{% else %}{{ usual_interval_s | num(0) }}秒{% endif %}上报一次）{% endif %}{% endif %}"
                "{% if open_risk_names is defined %}，而该设备的{{ open_risk_names }}预警仍未解除{% endif %}"
            },
            standing="设备失联期间，漏水、火情等风险发生时将无法及时向您预警，请尽快检查。",
        ),
        "unusual_reading": RiskText(
            "设备读数异常",
            "设备隐患发展为故障或损失",
            (
                "请安排一次设备体检：核对该读数（如用温度计比对传感器、查看压缩机或电机运行情况）",
                "如确认设备异常，请尽快联系维修人员检修",
                "如近期有正常的使用变化（如更换设备、调整设定），可忽略本提示",
            ),
            why={
                "unusual": "{{ metric_name }}现为{{ metric_value }}，"
                "而该设备平时在这个时段约为{{ usual | num(2) }}（通常波动约{{ typical_deviation | num(2) }}），"
                "{% if above %}偏高{% else %}偏低{% endif %}幅度约为平常波动的{{ deviations | num(1) }}倍，"
                "已持续{{ unusual_for_s | duration }}"
                "{% if others_unusual > 0 %}；另有{{ others_unusual }}项读数同时异常，相互印证{% endif %}",
                "fleet": "与同类设备的正常运行相比，{{ unusual_names }}的表现明显异常"
                "（比{{ more_unusual_than_pct | num(2) }}%的正常运行时段更反常）"
                "{% if corroborated %}，且该设备已有其他预警，相互印证{% endif %}",
            },
            standing="这是根据该设备自身历史或同类设备的运行数据学习得出的判断，没有任何一条物理规则被触发，"
            "因此我们无法预测何时会造成损失；但此类变化往往是故障的早期征兆，建议近日内检查。",
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
            why={
                "wet": "the leak sensor is wet"
                "{% if wet_for_s >= 60 %} and has been for {{ wet_for_s | duration }}{% endif %}"
            },
            now="Water is on the floor now and can cause {{ loss }}: shut the main water valve immediately.",
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
            why={
                "cooling": "the pipe is at {{ pipe_temp_c | num(1) }} °C"
                "{% if trend_c_per_h is defined and trend_c_per_h < 0 %}"
                "{% if water_drawn is defined %} while water runs; standing, it has been cooling"
                "{% else %} and cooling{% endif %} {{ trend_c_per_h | abs | num(1) }} °C an hour"
                "{% elif forecast_made_at_s is defined %}, and it was cooling before water was last drawn{% endif %}"
                " (water freezes at {{ freeze_c | num(1) }} °C)"
            },
            now="The water in the pipe is close to freezing now: it can freeze at any moment, "
            "and {{ loss }} may follow.",
        ),
        "harsh_braking": RiskText(
            "Harsh braking",
            "a rear-end collision",
            ("Keep at least a 3-second gap to the car ahead", "Look further ahead and slow down smoothly"),
            why={
                "braking": "you braked hard ({{ decel_g | num(2) }} g)"
                "{% if speed_kmh is defined and speed_kmh > 0 %} at {{ speed_kmh | num(0) }} km/h{% endif %}"
                "{% if events_last_hour > 1 %}, {{ events_last_hour }} times in the last hour{% endif %}"
            },
            standing="Harsh braking often means following too closely, which makes {{ loss }} more likely: "
            "please take care for the rest of your trip.",
        ),
        "speeding": RiskText(
            "Speeding",
            "a crash and fines",
            ("Slow down to the speed limit", "Take care near junctions and schools"),
            why={
                "over_limit": "you have been driving at {{ speed_kmh | num(0) }} km/h where the limit is "
                "{{ speed_limit_kmh | num(0) }} km/h, {{ over_pct | num(0) }}% over, for "
                "{% if over_for_s >= 60 %}{{ over_for_s | duration }}"
                "{% else %}{{ over_for_s | num(0) }} seconds{% endif %}"
            },
            standing="Speeding makes a crash more likely and more severe: please slow down now.",
        ),
        "driver_fatigue": RiskText(
            "Driver fatigue",
            "a fatigue-related crash",
            (
                "Stop at the next service area and rest for at least 20 minutes",
                "Do not drive more than 4 hours without a break",
            ),
            why={
                "driving": "you have been driving for {{ driving_for_s | duration }} without a proper break"
                "{% if night %}, at night{% endif %}"
            },
            forecast="In about {{ time_left }} (around {{ time_at }}) you will have driven "
            "{{ max_drive_s | duration }} without a break; after that the risk of {{ loss }} rises sharply.",
            now="You have been at the wheel longer than the safe {{ max_drive_s | duration }} without a break: "
            "the risk of {{ loss }} is high now.",
        ),
        "vehicle_crash": RiskText(
            "Vehicle crash",
            "injuries and damage to the vehicle",
            (
                "Safety first: switch on the hazard lights, get everyone to a safe place away from traffic "
                "and set up the warning triangle behind the vehicle",
                "If anyone is hurt, call 120 (ambulance) now; report the accident to the police on 122 "
                "(traffic accidents) or 110",
                "When it is safe, photograph the scene, the vehicles and the other party's number plate; "
                "do not admit liability",
                "Your insurer's claims hotline is contacting you: please keep your phone on",
            ),
            why={
                "impact": "your vehicle's sensor registered an impact of {{ impact_g | num(1) }} g"
                "{% if speed_before_kmh is defined and speed_before_kmh > 0 %}"
                " at {{ speed_before_kmh | num(0) }} km/h{% endif %}, and the vehicle came to a stop"
                "{% if stopped_after_s >= 1 %} within {{ stopped_after_s | num(0) }} seconds{% endif %}"
            },
            now="It looks as if your vehicle has been in a crash. Make sure everyone is safe first; "
            "we will help you with the claim.",
        ),
        "slow_leak": RiskText(
            "Continuous slow leak",
            "hidden water damage and mould in walls and floors",
            (
                "Turn off all taps and check whether the water meter still moves",
                "Check toilet cisterns, the water heater and concealed pipes",
                "If needed, shut the main valve and call a plumber",
            ),
            why={
                "never_stops": "water has been flowing without a single pause for {{ flowing_for_s | duration }}, "
                "never below {{ min_flow_lpm | num(2) }} l/min: about {{ lost_litres | num(0) }} litres so far"
            },
            standing="A leak like this does not stop by itself: the longer it runs, the more damage it does. "
            "Please check it today.",
        ),
        "burst_pipe": RiskText(
            "Burst pipe",
            "severe flooding",
            (
                "Turn off the main water valve now",
                "Switch off power in the affected area",
                "Call a plumber; we can help arrange one",
            ),
            why={
                "high_flow": "water is flowing at {{ flow_lpm | num(1) }} l/min, far above household use"
                "{% if high_flow_for_s >= 60 %}, for {{ high_flow_for_s | duration }} "
                "(about {{ lost_litres | num(0) }} litres){% endif %}"
                "{% if water_leak %}, and the leak sensor is wet{% endif %}"
            },
        ),
        "mould_risk": RiskText(
            "Damp and mould risk",
            "mould damage to fittings and belongings, and harm to health",
            ("Ventilate or run a dehumidifier", "Keep humidity below 60%", "Look for a hidden leak"),
            why={
                "humid": "humidity has stayed above {{ threshold_pct | num(0) }}% for {{ humid_for_s | duration }} "
                "(now {{ humidity_pct | num(1) }}%)"
            },
            standing="The longer the damp lasts, the more mould grows: "
            "please dry the room out within the next few days.",
        ),
        "fire_risk": RiskText(
            "Fire hazard",
            "a fire with major damage and danger to people",
            (
                "Make sure everyone is safe; call the fire service if needed",
                "Switch off the appliances concerned",
                "Do not use the lift",
            ),
            why={
                "smoke": "{% if smoke %}the smoke alarm has gone off{% endif %}",
                "hot": "the room has reached {{ temp_c | num(1) }} °C, above the {{ hot_c | num(0) }} °C alarm point",
                "temp_rise": "the temperature rose {{ temp_rise_c | num(1) }} °C "
                "within {{ rise_window_s | duration }}, to {{ temp_c | num(1) }} °C: "
                "far faster than a room warms by itself",
                "co": "carbon monoxide is at {{ co_ppm | num(0) }} ppm (alarm level {{ co_limit_ppm | num(0) }} ppm)",
            },
            now="This may be a fire, with major damage and danger to people within minutes: act immediately.",
            standing="A fire can develop within minutes: check the room now.",
        ),
        "power_cut": RiskText(
            "Power cut",
            "spoiled freezer contents or flooding when the sump pump stops",
            (
                "Check the fuse box for a tripped breaker",
                "Keep the freezer closed",
                "If it lasts, arrange backup power or move goods",
            ),
            why={"outage": "the mains power has been off for {{ outage_for_s | duration }} ({{ mains_v | num(0) }} V)"},
            forecast="A closed freezer keeps food frozen for about {{ hold_s | duration }} without power: in about "
            "{{ time_left }} (around {{ time_at }}) its contents may start to spoil, and a sump pump stays off "
            "until the power is back.",
            now="The power has been off longer than the {{ hold_s | duration }} a closed freezer keeps food frozen: "
            "its contents may be spoiling now, and a sump pump is off.",
        ),
        "bearing_failure": RiskText(
            "Bearing failure risk",
            "a machine breakdown and downtime",
            (
                "Schedule maintenance and check lubrication",
                "Reduce load and prepare spare parts",
                "Stop the machine if vibration keeps rising",
            ),
            why={
                "zone_d": "vibration has stayed at {{ vibration_held_mm_s | num(2) }} mm/s or more, past the "
                "{{ critical_mm_s | num(1) }} mm/s danger limit (ISO zone D)",
                "zone_c": "vibration is at about {{ vibration_level_mm_s | num(2) }} mm/s, in the alarm zone that "
                "starts at {{ warning_mm_s | num(1) }} mm/s (ISO zone C)",
                "trend": "vibration is rising {{ trend_mm_s_per_day | num(1) }} mm/s a day (now "
                "{{ vibration_mm_s | num(2) }} mm/s){% if vibration_mm_s < critical_mm_s %} towards the "
                "{{ critical_mm_s | num(1) }} mm/s danger limit{% endif %}",
                "baseline": "vibration is {{ ratio_to_baseline | num(1) }} times its normal level "
                "({{ vibration_mm_s | num(2) }} mm/s against {{ baseline_mm_s | num(2) }} mm/s)",
                "bearing_hot": "the bearing is at {{ bearing_temp_c | num(1) }} °C, "
                "above {{ bearing_limit_c | num(0) }} °C",
            },
            forecast="{% if seizure_mm_s is defined %}The vibration is growing about "
            "{{ growth_pct_per_h | num(0) }} % an hour: at this pace it reaches about "
            "{{ seizure_mm_s | num(0) }} mm/s, where the bearing may seize ({{ loss }}), in about {{ time_left }} "
            "(around {{ time_at }}); it can fail sooner.{% else %}On this trend the vibration reaches the danger "
            "limit in about {{ time_left }} "
            "(around {{ time_at }}); from then on {{ loss }} can happen at any time.{% endif %}",
            now="The machine is in the danger zone now: {{ loss }} can happen at any time.",
            standing="A bearing in this state usually gets worse: please have it serviced within days.",
        ),
        "coldchain_failure": RiskText(
            "Cold-chain temperature out of control",
            "spoiled goods",
            (
                "Check the compressor and its power",
                "Make sure the door is closed",
                "Move goods to backup cold storage if needed",
            ),
            why={
                "above_limit": "the box has been above {{ max_c | num(1) }} °C for {{ excursion_for_s | duration }} "
                "with the door closed (now {{ temp_c | num(1) }} °C)",
                "warming": "the box is at {{ temp_c | num(1) }} °C"
                "{% if trend_c_per_h is defined %} and warming {{ trend_c_per_h | num(1) }} °C an hour"
                "{% else %} and was warming before the door was opened{% endif %}"
                "{% if compressor_on is defined %}{% if compressor_on %} although the compressor is running"
                "{% else %}, with the compressor off{% if compressor_off_for_s >= 60 %} for "
                "{{ compressor_off_for_s | duration }}{% endif %}{% endif %}{% endif %}",
            },
            forecast="At this rate the box passes {{ max_c | num(1) }} °C in about {{ time_left }} "
            "(around {{ time_at }}), and the goods start to spoil.",
            now="The box is above {{ max_c | num(1) }} °C now: the goods may be spoiling.",
        ),
        "battery_drain": RiskText(
            "Device battery running low",
            "the device going offline and no longer warning you",
            ("Replace or charge the device battery soon",),
            why={
                "empty": "the battery is down to {{ battery_pct | num(1) }}%",
                "draining": "the battery is at {{ battery_pct | num(1) }}% "
                "and falling {{ drain_pct_per_h | num(1) }}% an hour",
                "low": "the battery is down to {{ battery_pct | num(1) }}%, below {{ low_pct | num(1) }}%",
            },
            forecast="At this rate the battery runs flat in about {{ time_left }} (around {{ time_at }}); "
            "the device then goes offline and can no longer warn you.",
            now="The battery is almost flat: the device may go offline at any moment, and can then no longer warn you.",
            standing="Once the battery runs flat, the device goes offline and can no longer warn you.",
        ),
        "sensor_stuck": RiskText(
            "Sensor reading stuck",
            "real risks going unnoticed",
            ("Check the sensor is not covered or damaged", "Restart or replace it if needed"),
            why={
                "flat": "the {{ metric_name }} sensor has reported exactly {{ metric_value }} for "
                "{{ flat_for_s | duration }} ({{ readings }} readings in a row)"
            },
            standing="While it is stuck, this sensor cannot warn you of a real risk: please check it today.",
        ),
        "device_silent": RiskText(
            "Device offline",
            "a leak or a fire going unnoticed",
            (
                "Check the device's power and network connection",
                "Make sure it has not been moved, covered or damaged",
                "Restart it, and contact us if it stays offline",
            ),
            why={
                "silent": "{% if reason == 'offline' %}the device reported itself offline"
                "{% if duration_min is defined %} {{ (duration_min * 60) | duration }} ago and has not come back"
                "{% endif %}{% else %}we have had no data from the device for {{ (duration_min * 60) | duration }}"
                "{% if usual_interval_s is defined %} (it usually reports every "
                "{% if usual_interval_s >= 60 %}{{ usual_interval_s | duration }}"
                "{% else %}{{ usual_interval_s | num(0) }} seconds{% endif %}){% endif %}{% endif %}"
                "{% if open_risk_names is defined %}, while its {{ open_risk_names }} warning is still open{% endif %}"
            },
            standing="While it is silent, the device cannot warn you of a leak or a fire: please check it soon.",
        ),
        "unusual_reading": RiskText(
            "Unusual readings",
            "a developing fault turning into a breakdown or a loss",
            (
                "Give the device a check-up: verify the reading (a thermometer beside the sensor, "
                "the compressor or motor at work)",
                "If something is wrong, have it serviced soon",
                "If you changed something recently (new equipment, another setting), you can ignore this",
            ),
            why={
                "unusual": "the {{ metric_name }} reads {{ metric_value }}, where this device usually reads "
                "about {{ usual | num(2) }} at this time of day (typically within {{ typical_deviation | num(2) }}): "
                "{% if above %}above{% else %}below{% endif %} it by {{ deviations | num(1) }} times "
                "its usual variation, for {{ unusual_for_s | duration }}"
                "{% if others_unusual > 0 %}; {{ others_unusual }} other reading(s) are unusual too, "
                "which bears it out{% endif %}",
                "fleet": "compared with devices of its kind running normally, its {{ unusual_names }} "
                "behave unusually (more so than {{ more_unusual_than_pct | num(2) }} % of normal running)"
                "{% if corroborated %}, and another warning on this device bears it out{% endif %}",
            },
            standing="This comes from what this device, or devices of its kind, usually do, not from a physical rule, "
            "so we cannot say "
            "when it could lead to a loss; changes like this are often the first sign of a fault: "
            "please have it checked in the next few days.",
        ),
    },
}

SEVERITY_TEXT = {
    "zh-CN": {"advisory": "提示", "warning": "预警", "critical": "紧急"},
    "en": {"advisory": "Advisory", "warning": "Warning", "critical": "Critical"},
}
"""A severity as a title shows it."""

SEVERITY_NOUN = {
    "zh-CN": {"advisory": "风险提示", "warning": "风险预警", "critical": "紧急风险预警"},
    "en": {"advisory": "an advisory", "warning": "a warning", "critical": "an urgent warning"},
}
"""A severity as a sentence names it ("Dear Mr Smith, a warning from your home sensors …" /
"王女士您好，您的家庭传感器发出风险预警：…")."""

DEVICE_LABELS = {
    "zh-CN": {"home": "家庭传感器", "vehicle": "车辆", "equipment": "设备", "coldchain": "冷链设备"},
    "en": {"home": "home sensors", "vehicle": "vehicle", "equipment": "equipment", "coldchain": "cold-chain unit"},
}

METRIC_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "zh-CN": {
        "temp_c": ("温度", "°C"),
        "outdoor_temp_c": ("室外温度", "°C"),
        "pipe_temp_c": ("水管温度", "°C"),
        "humidity_pct": ("湿度", "%"),
        "flow_lpm": ("水流量", "升/分钟"),
        "co_ppm": ("一氧化碳", "ppm"),
        "mains_v": ("市电电压", "伏"),
        "speed_kmh": ("车速", "公里/小时"),
        "vibration_mm_s": ("振动", "毫米/秒"),
        "bearing_temp_c": ("轴承温度", "°C"),
        "battery_pct": ("电量", "%"),
        "impact_g": ("撞击", "g"),
        "accel_long_g": ("纵向加速度", "g"),
        "speed_limit_kmh": ("限速", "公里/小时"),
        "water_leak": ("漏水传感器", ""),
        "smoke": ("烟雾报警", ""),
        "ignition": ("点火", ""),
        "current_a": ("电机电流", "安"),
        "pressure_kpa": ("压力", "千帕"),
        "rssi_dbm": ("无线信号强度", "dBm"),
        "readings_per_h": ("每小时上报的读数", "条"),
        "compressor_on_switches_per_h": ("压缩机每小时启停次数", "次"),
        "door_open_switches_per_h": ("每小时开关门次数", "次"),
    },
    "en": {
        "temp_c": ("temperature", "°C"),
        "outdoor_temp_c": ("outdoor temperature", "°C"),
        "pipe_temp_c": ("pipe temperature", "°C"),
        "humidity_pct": ("humidity", "%"),
        "flow_lpm": ("water flow", "l/min"),
        "co_ppm": ("carbon monoxide", "ppm"),
        "mains_v": ("mains voltage", "V"),
        "speed_kmh": ("speed", "km/h"),
        "vibration_mm_s": ("vibration", "mm/s"),
        "bearing_temp_c": ("bearing temperature", "°C"),
        "battery_pct": ("battery", "%"),
        "impact_g": ("impact", "g"),
        "accel_long_g": ("longitudinal acceleration", "g"),
        "speed_limit_kmh": ("speed limit", "km/h"),
        "water_leak": ("leak sensor", ""),
        "smoke": ("smoke alarm", ""),
        "ignition": ("ignition", ""),
        "current_a": ("motor current", "A"),
        "pressure_kpa": ("pressure", "kPa"),
        "rssi_dbm": ("radio signal", "dBm"),
        "readings_per_h": ("readings per hour", ""),
        "compressor_on_switches_per_h": ("compressor's switches per hour", ""),
        "door_open_switches_per_h": ("door openings and closings per hour", ""),
    },
}
"""A metric a stuck-sensor or unusual-reading warning or a claim notice's readings name: its label and
unit per locale (an unusual reading's channel may be a boolean's switches or the readings per hour)."""
