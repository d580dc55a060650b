"""Hand-written building blocks of legitimate messages that look like fraud to a keyword matcher.

Each kind has whole templates and, for the kinds that vary most (chats and reminders), parts that the
generator combines. The anti-fraud reminders quote the fraud scripts they warn about: the generator
fills ``{quote}`` with a filled hook or demand of a fraud category (see ``generate.py``), which is what
makes them hard. Braces are slots filled by the generator. Written for this corpus; nothing is copied.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HamBlocks:
    title: str
    #: Which sender numbers this kind comes from (see ``generate.SENDERS``).
    senders: tuple[str, ...]
    templates: tuple[str, ...]
    #: Optional endings, one of which is added to a share of the messages.
    after: tuple[str, ...] = ()


HAM: dict[str, HamBlocks] = {
    "verification_code": HamBlocks(
        "验证码",
        ("port", "bank"),
        (
            "【{shop}】验证码{code}，{minutes}分钟内有效。请勿泄露给他人。",
            "【{bank}】您正在进行转账操作，验证码{code}，工作人员不会向您索取，切勿告知他人。",
            "【{app_real}】你的登录验证码是{code}，如非本人操作，请忽略本短信。",
            "{code}（{shop}动态验证码），用于修改密码，请勿转发。",
            "【{bank}】您尾号{tail}的卡正在绑定{wallet}，验证码{code}。如非本人操作请致电{bank_phone}。",
            "【{carrier}】您的服务密码重置验证码为{code}，有效期{minutes}分钟。",
            "【12306】验证码：{code}，您正在进行候补购票，请勿告诉他人。",
            "【{gov_app}】您正在实名认证，验证码{code}，请勿向任何人提供。",
            "验证码{code}，您正在申请注销{shop}账户，若非本人操作请立即修改密码。",
            "【{wallet}】校验码{code}，你正在开通免密支付，谨防诈骗，不要告诉任何人。",
            "您的{shop}账号正在新设备登录，验证码{code}。若非本人操作，请及时修改密码。",
            "【{bank}】尾号{tail}卡片网上支付{small}元，动态密码{code}，任何人索取都是诈骗。",
            "{code}是你的{app_real}验证码，此验证码只用于登录你的{app_real}账号，切勿提供给他人。",
            "【{express}】寄件验证码{code}，请将验证码告知上门取件的快递员。",
        ),
        after=("", "", "退订回T", "（{bank_phone}）", "谨防诈骗。"),
    ),
    "bank_notice": HamBlocks(
        "银行通知",
        ("bank",),
        (
            "【{bank}】您尾号{tail}的账户{date}{clock}转账支出人民币{amount}元，余额{balance}元。",
            "【{bank}】您尾号{tail}的信用卡本期账单{amount}元，到期还款日{date}，请按时还款。",
            "【{bank}】您的账户因连续多次输错密码已暂时锁定，请携带身份证到网点办理。",
            "【{bank}】您尾号{tail}账户收到{name}转账{amount}元，附言：房租。",
            "【{bank}】您申请的个人消费贷款{amount}元已发放至尾号{tail}账户，首期还款日{date}。",
            "【{bank}】尊敬的客户，您的借记卡将于{date}到期，新卡已寄出，请注意查收。",
            "【{bank}】您购买的理财产品已到期，本金及收益{amount}元已转入尾号{tail}账户。",
            "【{bank}】因系统升级，{date}凌晨0点至6点手机银行暂停服务，给您带来不便敬请谅解。",
            "【{bank}】您的账户存在风险交易，已为您暂停非柜面交易，如有疑问请拨打{bank_phone}或到网点咨询。",
            "【{bank}】您尾号{tail}的信用卡额度已调整为{amount}元，详情请登录手机银行查询。",
            "【{bank}】您的定期存款{amount}元将于{date}到期，到期后自动转存。",
        ),
    ),
    "courier_notice": HamBlocks(
        "快递通知",
        ("port", "mobile"),
        (
            "【{express}】您的快件{parcel}已到{place}驿站，取件码{pick}，请在{hours}点前领取。",
            "【{express}】您的包裹正在派送中，快递员{name}，电话{phone}，请保持电话畅通。",
            "【{express}】您寄出的快件{parcel}已签收，感谢使用。",
            "【菜鸟驿站】您有{n}个包裹待取，取件码{pick}，地址：{place}。",
            "您好，我是{express}快递员，您的快递放在{place}了，记得取一下。",
            "【{express}】很抱歉，您的快件{parcel}在运输途中破损，我们已登记理赔，客服稍后与您联系，您也可拨打官方热线{express_phone}查询。",
            "【{express}】您的快件因收件地址不详暂存网点，请拨打{express_phone}确认地址。",
            "【{express}】您的快件延误了，给您带来不便非常抱歉，理赔进度可在官方APP查看。",
        ),
    ),
    "ecommerce_notice": HamBlocks(
        "电商通知",
        ("port",),
        (
            "【{shop}】您的订单{order}已发货，可在APP中查看物流。",
            "【{shop}】您申请的退款{amount}元已原路退回，预计1-3个工作日到账。",
            "【{shop}】您的售后申请已通过，请在7天内寄回商品，运费由商家承担。",
            "【{shop}】您的会员将于{date}到期自动续费{small}元，如需取消可在APP“我的-设置”中操作。",
            "【{shop}】您有一张{small}元优惠券即将过期，快去使用吧。回T退订",
            "【{shop}】您的订单因商家缺货已取消，货款{amount}元将原路退回。",
            "【{shop}】您关注的商品降价了，现价{amount}元。回T退订",
            "【{shop}】您已成功开通先用后付，本月待付{small}元，请在{date}前付款。",
            "【{shop}】您的包裹已签收，如有问题可在订单页申请售后，平台客服不会主动要求您转账。",
            "【{shop}】您的价保申请已通过，差价{small}元已退回。",
            "【{shop}】您参与的拼团已成功，商家将在48小时内发货。",
            "【{shop}】您的账户于{date}在新设备登录，如非本人操作请修改密码。",
            "【{shop}】您购买的运费险已生效，退货时自动理赔。",
        ),
        after=("", "", "回T退订", "感谢您的支持。"),
    ),
    "carrier_notice": HamBlocks(
        "运营商通知",
        ("carrier",),
        (
            "【{carrier}】尊敬的客户，您本月话费{amount}元，剩余流量{n}GB，详询{carrier_phone}。",
            "【{carrier}】您的账户余额不足{small}元，为不影响使用请及时充值。",
            "【{carrier}】您已成功办理{small}元流量包，次月生效。",
            "【{carrier}】积分兑换提醒：您有{points}积分，可在{carrier}APP兑换话费，积分年底清零。",
            "【{carrier}】您的号码已欠费停机，缴费后自动开机。",
            "【{carrier}】您好，您的宽带将于{date}到期，续费请拨打{carrier_phone}或到营业厅办理。",
            "【{carrier}】温馨提示：近期有不法分子冒充客服称积分兑换现金，请勿点击陌生链接。",
            "【{carrier}】您的{n}GB国内通用流量已使用80%，超出后按套餐外资费收取。",
            "【{carrier}】您办理的携号转网业务已受理，请于{date}前结清话费。",
            "【{carrier}】尊敬的客户，您已成功缴费{small}元，当前余额{amount}元。",
            "【{carrier}】{name}您好，您的实名信息即将过期，请携带身份证原件到营业厅更新，我们不会通过短信链接办理。",
            "【{carrier}】您的国际漫游已开通，在境外接听电话按当地资费收取。请警惕境外诈骗电话。",
            "【{carrier}】您预约的装机服务，工程师{name}将于{date}上门，联系电话{phone}。",
        ),
        after=("", "", "详询{carrier_phone}。", "感谢您的支持！"),
    ),
    "marketing_106": HamBlocks(
        "106营销",
        ("port",),
        (
            "【{shop}】年中大促，全场满{small}减{tiny}，会员再享9折！回T退订",
            "【{brand}】新品上市，到店试穿送好礼，{date}前有效。拒收请回复R",
            "【{bank}】办理信用卡首刷礼，最高享{small}元刷卡金，详询网点。回TD退订",
            "【{brand}】您的{points}积分即将到期，可到门店兑换礼品。退订回T",
            "【{platform_real}】理财节来了，稳健型产品年化{pct_real}，理财有风险，投资需谨慎。回T退订",
            "【{school_real}】暑期班火热报名中，前{n}名报名立减{small}元。退订回T",
            "【{car}4S店】您的爱车保养到期了，预约到店享工时8折。回T退订",
            "【{brand}】恭喜您获得会员生日礼券{tiny}元，到店出示即可使用。退订回T",
            "【{shop}】百亿补贴限时抢，低至{tiny}元。回T退订",
            "【{brand}】会员日全场8.8折，积分翻倍，{date}一天。回T退订",
            "【{carrier}】5G套餐升级优惠，每月多送{n}GB流量，回复1办理。",
            "【{platform_real}】您有一笔{small}元的新客理财体验券，理财有风险，投资需谨慎。退订回T",
            "【{shop}】您的购物车商品正在打折，库存告急，快来下单吧。回T退订",
            "【{hotel}】周末特惠房{small}元起，会员专享。退订回TD",
            "【{bank}】分期购车优惠，首付低至{pct_real}，详询当地网点。退订回T",
        ),
        after=("", "", "拒收请回复R"),
    ),
    "antifraud_reminder": HamBlocks(
        "反诈提醒（引用诈骗话术）",
        ("antifraud", "bank", "port"),
        (
            "【{police_sign}】提醒：凡是自称“{quote}”的，都是诈骗！如遇可疑情况请拨打96110。",
            "【国家反诈中心】提示您：{quote}——这是典型的诈骗话术，请勿相信，切勿转账。",
            "【{bank}】温馨提示：如有人告诉您“{quote}”，请立即挂断，本行不会以任何理由要求您转账。",
            "【{police_sign}】近期高发诈骗：骗子会说“{quote}”。记住：不听、不信、不转账。",
            "【{school_real}】家长您好：近期有骗子冒充老师称“{quote}”，学校从不通过私人账户收费，请勿上当。",
            "{city}公安反诈提醒：接到“{quote}”这类信息，一律是诈骗，请拨打110咨询。",
            "【{carrier}】反诈提示：“{quote}”是诈骗分子常用说辞，如接到此类电话请直接挂断并拨打96110。",
            "【{police_sign}】防骗小课堂：{topic}诈骗的套路是“{quote}”，请广泛转告家中老人。",
        ),
    ),
    "government_notice": HamBlocks(
        "政务通知",
        ("gov", "port"),
        (
            "【{city}人社】您的社保卡已制卡完成，请携带身份证到{place}领取。",
            "【{city}医保】您{year}年度城乡居民医保已缴费成功，缴费金额{small}元。",
            "【{city}税务】{year}年度个人所得税综合所得汇算已开始，请登录个人所得税APP办理。",
            "【{city}公积金】您的公积金账户本月缴存{amount}元，余额{balance}元。",
            "【{city}法院】{name}您好，您的案件将于{date}开庭，请准时到庭，如有疑问请拨打12368。",
            "【{city}交警】您的车辆于{date}在{place}有一条违法记录，请通过交管12123查询处理。",
            "【{city}海关】您的进境物品已完成查验，请按申报单缴纳税款后领取，咨询12360。",
            "【{city}政务】ETC用户请注意：ETC服务不会通过短信链接要求您认证，请通过发行银行官方渠道办理。",
            "【{city}人社】养老保险待遇资格认证可通过官方APP办理，不收取任何费用。",
            "【{city}气象】今夜到明天有大到暴雨，请注意出行安全。",
        ),
    ),
    "travel_notice": HamBlocks(
        "出行通知",
        ("airline", "port"),
        (
            "【{airline}】尊敬的旅客，您乘坐的{date}{flight}航班因天气原因延误，新的起飞时间为{clock}，请关注机场广播。",
            "【{airline}】您的{flight}航班已取消，可在官方APP或拨打{airline_phone}免费改签或全额退票。",
            "【12306】订单{order}，{name}您已购{date}{train}次列车，检票口{gate}，请凭身份证乘车。",
            "【12306】您的退票申请已办理，退款{amount}元将在7个工作日内原路退回。",
            "【{airline}】您已成功改签至{date}{flight}航班，座位{seat}。",
            "【{hotel}】您预订的{date}入住已确认，房费{amount}元到店支付。",
            "【滴滴出行】您的行程已结束，车费{small}元。",
            "【{airline}】温馨提示：您的{flight}航班登机口变更为{gate}，请留意。",
            "【{airline}】您的{date}{flight}航班开始值机，请通过官方APP办理。航班变动请以官方通知为准，谨防假冒退改签诈骗。",
            "【{airline}】很抱歉，您的{flight}航班延误超过4小时，可通过官方APP申请延误补偿，本公司不会要求您提供银行卡密码。",
            "【12306】您已成功改签{date}{train}次，差额{small}元已退回原支付账户。",
            "【12306】您的候补订单已兑现，请于30分钟内支付。",
            "【{hotel}】您的订单已取消，预付房费{small}元将原路退回。",
        ),
        after=("", "", "祝您旅途愉快。", "详询客服。"),
    ),
    "chat_money": HamBlocks(
        "私人聊天（钱、贷款、工作、投资）",
        ("mobile",),
        (
            "{call}，{chat}",
            "{chat}",
            "{chat}{chat_tail}",
            "{call}，{chat}{chat_tail}",
        ),
    ),
}

#: Personal chats: how they address each other, what they say, how they end.
CALLS = (
    "妈",
    "爸",
    "老婆",
    "老公",
    "哥",
    "姐",
    "宝",
    "儿子",
    "闺女",
    "老{surname}",
    "{name}",
    "亲爱的",
    "兄弟",
    "{surname}哥",
    "{surname}姐",
    "小{surname}",
)
CHATS = (
    "上次借你的{small}块我转你微信了，你看一下",
    "房贷这个月扣了{amount}，手头有点紧",
    "我工资发了，给你转了{small}，记得收",
    "你那个基金最近亏了没？我的跌了百分之十几",
    "我们公司在招人，你要不要投个简历",
    "下周聚餐AA，每人{small}，我先垫上",
    "银行打电话说我信用卡额度提了，我没理他",
    "我看新闻说有冒充客服退款的骗子，你小心点",
    "明天去银行办贷款，要带身份证和户口本",
    "刷单那种兼职都是骗人的，别做",
    "股票今天涨停了，可惜我没买",
    "孩子学校要交{small}的校服费，你交了吗",
    "房租我转给房东了，你那份{small}转我就行",
    "我换新号了，这是我新号码，旧号不用了",
    "车险快到期了，保险公司报价{amount}",
    "快递丢了，我在APP上申请了理赔",
    "我买了点理财，年化才{pct_real}，聊胜于无",
    "晚上回来吃饭吗？我买了鱼",
    "帮我看看这个贷款合同，利息是不是太高了",
    "老板说这个月奖金延后发",
    "公积金可以提出来还房贷，你去问问",
    "妈，我到学校了，生活费还够，不用转了",
    "航班延误了，估计晚到两个小时",
    "游戏账号我不卖了，留着自己玩",
    "那个说能修复征信的是骗子，我同事被骗了{small}",
)
CHAT_TAILS = ("", "。", "！", "哈哈", "～", "[微笑]", "，回头说", "，晚上聊")

#: Reminder topics: the fraud category each quote comes from, in the words of a reminder.
TOPICS = {
    "order_brushing": "刷单返利",
    "investment": "虚假投资理财",
    "loan": "虚假贷款",
    "customer_service": "冒充客服",
    "police_impersonation": "冒充公检法",
    "acquaintance_impersonation": "冒充熟人领导",
    "credit_repair": "注销校园贷",
    "game_trade": "游戏交易",
    "romance": "网络交友",
    "prize": "中奖",
    "courier_claim": "快递理赔",
    "sextortion": "裸聊敲诈",
    "ticketing": "机票退改签",
    "social_insurance": "社保医保",
    "judicial_customs": "法院海关",
    "phishing": "钓鱼链接",
}
